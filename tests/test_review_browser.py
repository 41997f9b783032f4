"""The review UI in a real Chromium (Debian's /usr/bin/chromium driven by Playwright) against a live server.

The server is the real app under werkzeug on 127.0.0.1 in a thread; the
browser may reach nothing else (every other request is aborted and fails the
test). Screenshots go to var/test-artifacts/.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from service.db import Database
from service.models import ReviewTask, TrainingExample, TrainingRun
from tests.review_fixtures import PASSWORD, add_user, seed_pdf_invoice, seed_ticket

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' (playwright)")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "var" / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does it)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def settings(make_settings, sqlite_url, redis_url):
    """The browser tests run on SQLite only: the database paths are covered by test_review_ui."""
    return make_settings(database_url=sqlite_url, redis_url=redis_url)


@pytest.fixture
def server(make_app, settings) -> Iterator[str]:
    app = make_app(settings)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)


@pytest.fixture
def new_page(browser, server):
    """Pages in fresh contexts (one per person) that can reach the test server only."""
    contexts, outside = [], []

    def make(width: int = 1280, height: int = 800):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=server)
        context.set_default_timeout(10_000)

        def only_local(route):
            url = route.request.url
            # The server, and the browser's own resources (its PDF viewer is a built-in extension).
            if url.startswith((server + "/", "chrome://", "chrome-extension://", "data:", "blob:")):
                route.continue_()
            else:
                outside.append(url)
                route.abort()

        context.route("**/*", only_local)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()
    assert outside == [], f"the browser tried to reach {outside}"


def log_in(page, email: str) -> None:
    page.goto("/ui/login")
    page.locator("#email").focus()  # it has autofocus; make sure before typing
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/queue")


def focused_key(page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.dataset.key || document.activeElement.id")


def shoot(page, name: str, full_page: bool = False) -> None:
    """What the reviewer sees (the viewport), or the whole page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


def db_rows(settings, query):
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            return session.scalars(query).all()
    finally:
        database.dispose()


# --- the day of a reviewer ---------------------------------------------------------------


def test_review_with_the_keyboard_then_the_next_document_loads(new_page, settings):
    pdf = seed_pdf_invoice(settings, age_minutes=90)
    ticket = seed_ticket(settings, age_minutes=5)
    add_user(settings, "rita@example.com")
    page = new_page()
    log_in(page, "rita@example.com")

    assert page.locator("[data-count=total]").inner_text() == "2"
    assert page.locator(f"tr[data-document='{pdf}']").get_by_text("failed rule").count() == 1
    shoot(page, "queue.png", full_page=True)

    page.locator(f"tr[data-document='{pdf}']").get_by_role("button", name="Claim").click()
    page.wait_for_url(f"**/ui/documents/{pdf}")
    # Side by side at 1280x800: the PDF, the extracted text, the form.
    boxes = [page.locator(sel).bounding_box() for sel in (".pane.original", ".pane.text", ".pane.fields")]
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    assert page.locator("iframe[title^='Original']").get_attribute("src").endswith(f"/ui/documents/{pdf}/file")

    # Focus starts on the first field that needs attention; Tab visits only those.
    assert focused_key(page) == "subtotal"
    page.keyboard.press("Tab")
    assert focused_key(page) == "tax"
    page.keyboard.press("Tab")
    assert focused_key(page) == "total"
    assert page.locator("mark.active").first.inner_text() == "279.84"  # its evidence is highlighted
    page.keyboard.type("279.84")  # the value is selected on focus, typing replaces it
    page.keyboard.press("Enter")  # Enter moves on like Tab
    assert focused_key(page) == "line_items.0.amount"
    for _ in range(3):
        page.keyboard.press("Tab")
    assert focused_key(page) == "line_items.3.amount"
    page.keyboard.type("150.00")
    shoot(page, "review.png")

    page.evaluate("window.__sameDocument = true")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"[data-review][data-document='{ticket}']")
    assert page.evaluate("window.__sameDocument") is True  # no full page load
    assert page.url.endswith(f"/ui/documents/{ticket}")
    note = page.locator("[data-note]").inner_text()
    assert "2 fields corrected" in note and "training example #" in note

    # The next document is the one full of markup: shown as text, never run.
    assert page.evaluate("window.__xss") is None
    text = page.locator("[data-doc-text]").inner_text()
    assert "<script>window.__xss = 1</script>" in text and '<img src=x onerror="window.__xss = 2">' in text
    assert page.locator("#fld-summary").input_value() == "<script>window.__xss = 1</script>"
    shoot(page, "review-xss-ticket.png")

    # The help overlay: ? outside a text box, Esc closes it.
    page.keyboard.press("Escape")  # out of the field
    assert page.evaluate("document.activeElement === document.body")
    page.keyboard.press("?")
    assert page.locator("#help-dialog").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#help-dialog").is_visible()

    page.goto(f"/ui/documents/{pdf}/history")
    change = page.locator(".change[data-field='total']")
    assert "279.34" in change.inner_text() and "279.84" in change.inner_text()
    example = page.locator("[data-training-example]")
    assert "approved by rita@example.com" in example.inner_text()
    shoot(page, "history.png", full_page=True)
    assert page.js_errors == []

    [row] = db_rows(settings, select(TrainingExample))
    assert row.values["total"] == 279.84 and row.values["line_items"][3]["amount"] == 150.0
    assert row.origins["total"] == "human"


def test_line_items_add_and_move_with_the_keyboard(new_page, settings):
    pdf = seed_pdf_invoice(settings)
    add_user(settings, "rita@example.com")
    page = new_page()
    log_in(page, "rita@example.com")
    page.locator(f"tr[data-document='{pdf}']").get_by_role("button", name="Claim").click()
    page.wait_for_url(f"**/ui/documents/{pdf}")
    page.keyboard.press("Shift+Tab")  # from the first stop back round to Approve
    page.keyboard.press("Shift+Tab")
    assert focused_key(page) == "line_items.3.amount"
    page.keyboard.type("150")
    page.keyboard.press("Alt+N")  # a new row below, focus in its first cell
    page.keyboard.type("Delivery")
    for _ in range(3):
        page.keyboard.press("Tab")
    page.keyboard.type("9.50")
    page.keyboard.press("Alt+ArrowUp")  # above the truffles
    rows = page.locator("tbody[data-rows='line_items'] tr")
    assert rows.count() == 5 and rows.nth(3).locator(".rownum").inner_text().strip() == "4"
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-review-done]")
    [row] = db_rows(settings, select(TrainingExample))
    assert [r["description"] for r in row.values["line_items"]] == [
        "Beeswax XL", "Office Chair", "Olive Oil", "Delivery", "Luxury Truffles"]
    assert page.js_errors == []


def test_pick_the_frontier_candidate_with_one_key(new_page, settings):
    ticket = seed_ticket(settings, text="Where is my parcel? Order 4411. Mallory <mallory@example.com>",
                         uncertainty=0.5, frontier={"category": "delivery", "summary": "Parcel missing"})
    add_user(settings, "rita@example.com")
    page = new_page()
    log_in(page, "rita@example.com")
    page.locator(f"tr[data-document='{ticket}']").get_by_role("button", name="Claim").click()
    page.wait_for_url(f"**/ui/documents/{ticket}")
    assert focused_key(page) == "category"
    page.keyboard.press("Alt+2")
    assert page.locator("#fld-category").input_value() == "delivery"
    page.keyboard.press("Tab")
    assert focused_key(page) == "summary"
    page.keyboard.press("Alt+2")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("[data-review-done]")
    [row] = db_rows(settings, select(TrainingExample))
    assert row.values["category"] == "delivery" and row.values["summary"] == "Parcel missing"
    assert page.js_errors == []


# --- two reviewers -----------------------------------------------------------------------


def test_a_second_reviewer_sees_the_claim(new_page, settings):
    pdf = seed_pdf_invoice(settings)
    add_user(settings, "rita@example.com")
    add_user(settings, "bob@example.com")
    rita, bob = new_page(), new_page()
    log_in(rita, "rita@example.com")
    rita.locator(f"tr[data-document='{pdf}']").get_by_role("button", name="Claim").click()
    rita.wait_for_url(f"**/ui/documents/{pdf}")

    log_in(bob, "bob@example.com")
    row = bob.locator(f"tr[data-document='{pdf}']")
    assert "rita@example.com" in row.inner_text() and row.get_by_role("button").count() == 0
    bob.goto(f"/ui/documents/{pdf}")
    assert "Claimed by rita@example.com" in bob.locator("[data-claim-state]").inner_text()
    assert bob.locator("#fld-total").is_disabled() and bob.locator("#approve").count() == 0


def test_a_stale_save_is_refused_and_the_edits_stay_on_screen(new_page, settings):
    pdf = seed_pdf_invoice(settings)
    add_user(settings, "rita@example.com")
    add_user(settings, "bob@example.com")
    rita, bob = new_page(), new_page()
    log_in(rita, "rita@example.com")
    rita.locator(f"tr[data-document='{pdf}']").get_by_role("button", name="Claim").click()
    rita.wait_for_url(f"**/ui/documents/{pdf}")

    # Rita's claim runs out while she is away; Bob takes the document over.
    database = Database(settings.database_uri)
    with database.session() as session:
        task = session.get(ReviewTask, pdf)
        task.claimed_until = task.claimed_until.replace(year=2000)
        session.commit()
    database.dispose()
    log_in(bob, "bob@example.com")
    bob.locator(f"tr[data-document='{pdf}']").get_by_role("button", name="Claim").click()
    bob.wait_for_url(f"**/ui/documents/{pdf}")

    rita.locator("#fld-total").fill("1.00")
    rita.keyboard.press("Control+Enter")
    message = rita.locator("#review-messages [role=alert]")
    message.wait_for()
    assert "changed this document since you opened it" in message.inner_text()
    assert "bob@example.com holds it now" in message.inner_text()
    assert rita.locator("#fld-total").input_value() == "1.00"  # nothing she typed is lost from view
    assert db_rows(settings, select(TrainingExample)) == []
    shoot(rita, "review-stale.png")

    bob.keyboard.press("Control+Enter")
    bob.wait_for_selector("[data-review-done]")
    [row] = db_rows(settings, select(TrainingExample))
    assert row.approver == "bob@example.com" and row.values["total"] == 279.34


# --- layout ------------------------------------------------------------------------------


def test_narrow_window_stacks_the_panes_without_sideways_scrolling(new_page, settings):
    ticket = seed_ticket(settings, text="Hi, order 4411 never came. Mallory <mallory@example.com>",
                         filename="plain.txt")
    add_user(settings, "rita@example.com")
    page = new_page(width=420, height=800)
    log_in(page, "rita@example.com")
    page.goto(f"/ui/documents/{ticket}")
    text, fields = page.locator(".pane.text").bounding_box(), page.locator(".pane.fields").bounding_box()
    assert fields["y"] >= text["y"] + text["height"] - 1  # stacked
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    for control in page.locator("[data-field-control]").all():
        control_id = control.get_attribute("id")
        assert control_id and page.locator(f"label[for='{control_id}']").count() == 1
    shoot(page, "review-narrow.png")


def test_focus_is_visible(new_page, settings):
    add_user(settings, "rita@example.com")
    page = new_page()
    log_in(page, "rita@example.com")
    page.keyboard.press("Tab")  # the skip link
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")


def test_chromium_is_debians():
    assert shutil.which("chromium") == "/usr/bin/chromium"


def test_an_engineer_starts_a_training_run_and_watches_it_live(new_page, settings):
    add_user(settings, "eddie@example.com", "engineer")
    page = new_page()
    log_in(page, "eddie@example.com")
    page.get_by_role("link", name="Training runs").click()
    page.wait_for_url("**/ui/engineering/runs")
    page.locator("#run-steps").focus()
    page.keyboard.type("8")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/engineering/runs/1")
    assert "Training run 1 is queued" in page.locator("#flash").inner_text()
    assert page.locator("#run-live").get_attribute("data-status") == "queued"

    # The job reports as it trains; the page follows without reloading.
    page.evaluate("window.__samePage = true")
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            run = session.get(TrainingRun, 1)
            run.status, run.progress = "processing", {"stage": "train", "step": 4, "total": 8, "loss": 0.5, "eta_s": 30}
            run.log, run.metrics = "10:00:00 started\n10:00:04 step 4: loss 0.5000\n", {"loss": [1.0, 0.8, 0.6, 0.5]}
            session.commit()
        page.wait_for_selector("#run-progress[value='4']", timeout=8_000)
        assert "step 4: loss 0.5000" in page.locator(".run-log").inner_text()
        assert page.locator("#run-live polyline").count() == 1
        shoot(page, "training-run.png", full_page=True)
        with database.session() as session:
            run = session.get(TrainingRun, 1)
            run.status, run.slot, run.progress, run.output_model_version = "done", None, {"stage": "done"}, "m-2"
            run.metrics = {**run.metrics, "gate": {"decision": "promote", "reasons": []}}
            session.commit()
    finally:
        database.dispose()
    page.wait_for_selector("#run-live[data-status='done']", timeout=8_000)
    assert "m-2: promoted" in page.locator("#run-live").inner_text()
    assert page.locator("#run-live").get_attribute("hx-trigger") is None  # polling has stopped
    assert page.evaluate("window.__samePage") is True
    assert page.js_errors == []
