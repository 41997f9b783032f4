"""The review UI through Flask's test client: access, CSRF, cookies, escaping, claims, stale saves, approval.

Documents are seeded as the pipeline leaves them (tests/review_fixtures.py);
every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from config.settings import Settings
from review_ui.forms import parse_values
from review_ui.highlight import runs
from service.db import Database
from service.doctypes import load_document_types
from service.models import (
    APPROVED,
    REJECTED,
    AuditEvent,
    Document,
    ExtractionAttempt,
    ModelVersion,
    Review,
    ReviewTask,
    TrainingExample,
    TrainingRun,
    User,
    utcnow,
)
from service.reviews import is_golden
from tests.review_fixtures import PASSWORD, add_user, register_versions, seed_pdf_invoice, seed_ticket

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def login(client, email: str) -> str:
    """Log in and return the CSRF token of the new session."""
    first = TOKEN.search(client.get("/ui/login").text).group(1)
    resp = client.post("/ui/login", data={"email": email, "password": PASSWORD, "csrf_token": first})
    assert resp.status_code == 302, resp.text
    return TOKEN.search(client.get("/ui/queue").text).group(1)


class FormReader(HTMLParser):
    """The fields of the review form as a browser would submit them (templates excluded)."""

    def __init__(self, form_id: str = "review-form") -> None:
        super().__init__()
        self.form_id, self.inside, self.in_template, self.select = form_id, False, 0, None
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        elif tag == "template":
            self.in_template += 1
        if not self.inside or self.in_template:
            return
        if tag == "input" and a.get("name"):
            self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self.select = a.get("name")
        elif tag == "option" and "selected" in a and self.select:
            self.fields.append((self.select, a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "template":
            self.in_template -= 1


def review_form(client, document_id: str) -> list[tuple[str, str]]:
    reader = FormReader()
    reader.feed(client.get(f"/ui/documents/{document_id}").text)
    assert reader.fields, "no review form on the page"
    return reader.fields


def edit(fields: list[tuple[str, str]], **changes: str) -> MultiDict:
    """The form with some fields changed (keys use __ for dots: f__total)."""
    wanted = {k.replace("__", "."): v for k, v in changes.items()}
    return MultiDict([(k, wanted.get(k, v)) for k, v in fields])


def count(settings, model, *where) -> int:
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        database.dispose()


def fetch(settings, query):
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            return session.scalars(query).all()
    finally:
        database.dispose()


@pytest.fixture
def reviewer(settings):
    add_user(settings, "rita@example.com", "reviewer")
    return "rita@example.com"


@pytest.fixture
def docs(settings):
    return {"pdf": seed_pdf_invoice(settings, age_minutes=90), "ticket": seed_ticket(settings, age_minutes=10)}


# --- access ----------------------------------------------------------------------------


def test_pages_need_a_login_and_api_keys_open_nothing(client, make_key, docs):
    assert client.get("/ui/queue").status_code == 302
    key = make_key("submit,read,review,admin")
    resp = client.get("/ui/queue", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 302 and "/ui/login" in resp.headers["Location"]
    resp = client.get(f"/ui/documents/{docs['pdf']}/file", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 302


def test_the_original_file_takes_no_path_tricks(client, reviewer, docs):
    login(client, reviewer)
    for path in ("/ui/documents/../file", "/ui/documents/%2e%2e/file", "/ui/documents/%2e%2e%2fetc%2fpasswd/file",
                 "/ui/documents/..%5c..%5cetc/file", f"/ui/documents/{docs['pdf']}/file/../../../etc/passwd"):
        resp = client.get(path)
        assert resp.status_code == 404 and b"root:" not in resp.data, path
    resp = client.get(f"/ui/documents/{docs['pdf']}%00/file")  # PostgreSQL cannot even compare a NUL
    assert resp.status_code == 400 and "NUL" in resp.text
    assert client.get(f"/ui/documents/{docs['pdf']}/file").data.startswith(b"%PDF")


def test_a_ui_session_is_not_valid_on_the_api(client, reviewer):
    login(client, reviewer)
    assert client.get("/ui/queue").status_code == 200
    assert client.get("/v1/documents").status_code == 401


def test_wrong_password_is_refused(client, reviewer):
    first = TOKEN.search(client.get("/ui/login").text).group(1)
    resp = client.post("/ui/login", data={"email": reviewer, "password": "not it at all", "csrf_token": first})
    assert resp.status_code == 401
    assert client.get("/ui/queue").status_code == 302


def test_reviewers_cannot_reach_engineers_pages(app, settings, reviewer):
    add_user(settings, "eddie@example.com", "engineer")
    rita, eddie = app.test_client(), app.test_client()
    login(rita, reviewer)
    login(eddie, "eddie@example.com")
    for page in ("models", "runs", "stats"):
        assert rita.get(f"/ui/engineering/{page}").status_code == 403
        assert eddie.get(f"/ui/engineering/{page}").status_code == 200
    assert "Stats" not in rita.get("/ui/queue").text
    assert "<svg" in eddie.get("/ui/engineering/stats").text


def test_session_cookie_flags(client, reviewer):
    first = TOKEN.search(client.get("/ui/login").text).group(1)
    resp = client.post("/ui/login", data={"email": reviewer, "password": PASSWORD, "csrf_token": first})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = client.application.test_client()
    first = TOKEN.search(secure.get("/ui/login", base_url="https://localhost").text).group(1)
    resp = secure.post("/ui/login", base_url="https://localhost", headers={"Referer": "https://localhost/ui/login"},
                       data={"email": reviewer, "password": PASSWORD, "csrf_token": first})
    assert resp.status_code == 302
    assert "Secure" in resp.headers["Set-Cookie"]


# --- CSRF ------------------------------------------------------------------------------


def test_unsafe_requests_without_the_csrf_token_are_refused(client, settings, reviewer, docs):
    csrf = login(client, reviewer)
    resp = client.post(f"/ui/documents/{docs['pdf']}/claim")
    assert resp.status_code == 400 and "security token" in resp.text
    resp = client.post(f"/ui/documents/{docs['pdf']}/claim", data={"csrf_token": "forged"})
    assert resp.status_code == 400
    assert count(settings, ReviewTask) == 0
    # htmx sends the token as a header (hx-headers on <body>).
    resp = client.post(f"/ui/documents/{docs['pdf']}/claim", headers={"X-CSRFToken": csrf})
    assert resp.status_code == 303
    assert count(settings, ReviewTask) == 1
    # Every page hands htmx a token of the session's own. (Tokens are signed with a timestamp, so the
    # page's may differ from the one above once a second has passed: it must work, not match.)
    header = re.search(r'hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', client.get("/ui/queue").text)
    assert header, "no CSRF header for htmx on the page"
    resp = client.post(f"/ui/documents/{docs['ticket']}/claim", headers={"X-CSRFToken": header.group(1)})
    assert resp.status_code == 303 and count(settings, ReviewTask) == 2


def test_login_and_logout_need_the_token_too(client, reviewer):
    resp = client.post("/ui/login", data={"email": reviewer, "password": PASSWORD})
    assert resp.status_code == 400
    csrf = login(client, reviewer)
    assert client.post("/ui/logout").status_code == 400
    assert client.post("/ui/logout", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/ui/queue").status_code == 302


# --- untrusted text --------------------------------------------------------------------


def test_document_text_is_always_escaped(client, reviewer, docs):
    login(client, reviewer)
    for url in (f"/ui/documents/{docs['ticket']}", f"/ui/documents/{docs['ticket']}/history", "/ui/queue"):
        page = client.get(url)
        assert page.status_code == 200
        assert "<script>window.__xss" not in page.text
        assert "<img src=x" not in page.text and "<b>bold" not in page.text
    page = client.get(f"/ui/documents/{docs['ticket']}")
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page.text
    assert "&lt;img src=x onerror=" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    original = client.get(f"/ui/documents/{docs['ticket']}/file")
    assert original.mimetype == "text/plain" and "sandbox" in original.headers["Content-Security-Policy"]


# --- the queue and claims --------------------------------------------------------------


def test_queue_lists_filters_sorts_and_counts(client, settings, reviewer, docs):
    login(client, reviewer)
    page = client.get("/ui/queue").text
    assert '<strong data-count="total">2</strong>' in page
    assert page.index(docs["pdf"]) < page.index(docs["ticket"])  # oldest first
    assert "low confidence" in page and "failed rule" in page
    assert "0.35" in page and "0.38" in page  # lowest confidence of each
    tickets = client.get("/ui/queue?doc_type=ticket").text
    assert docs["ticket"] in tickets and docs["pdf"] not in tickets
    assert "showing 1" in tickets
    by_conf = client.get("/ui/queue?sort=confidence").text
    assert by_conf.index(docs["ticket"]) < by_conf.index(docs["pdf"])
    rules = client.get("/ui/queue?reason=failed_rule").text
    assert docs["pdf"] in rules and docs["ticket"] not in rules


def test_a_claim_locks_the_document_to_its_reviewer(app, settings, reviewer, docs):
    add_user(settings, "bob@example.com")
    rita, bob = app.test_client(), app.test_client()
    rita_csrf, bob_csrf = login(rita, reviewer), login(bob, "bob@example.com")
    assert rita.post(f"/ui/documents/{docs['pdf']}/claim", data={"csrf_token": rita_csrf}).status_code == 303

    resp = bob.post(f"/ui/documents/{docs['pdf']}/claim", data={"csrf_token": bob_csrf}, follow_redirects=True)
    assert "rita@example.com is reviewing this document" in resp.text
    page = bob.get(f"/ui/documents/{docs['pdf']}").text
    assert "Claimed by rita@example.com" in page and 'id="approve"' not in page
    assert "rita@example.com" in bob.get("/ui/queue").text
    # Bob's "next" skips what Rita holds.
    assert bob.post("/ui/next", data={"csrf_token": bob_csrf}).headers["Location"].endswith(docs["ticket"])

    # Once the claim runs out, Bob may take it over.
    expire_claim(settings, docs["pdf"])
    assert bob.post(f"/ui/documents/{docs['pdf']}/claim", data={"csrf_token": bob_csrf}).status_code == 303
    assert "Claimed by bob@example.com" in rita.get(f"/ui/documents/{docs['pdf']}").text


def expire_claim(settings, document_id: str) -> None:
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            session.get(ReviewTask, document_id).claimed_until = utcnow() - timedelta(seconds=1)
            session.commit()
    finally:
        database.dispose()


# --- saving ----------------------------------------------------------------------------


def claim_and_read(client, csrf: str, document_id: str) -> list[tuple[str, str]]:
    assert client.post(f"/ui/documents/{document_id}/claim", data={"csrf_token": csrf}).status_code == 303
    return review_form(client, document_id)


def test_approve_stores_corrections_audit_and_training_example(client, settings, reviewer, docs):
    csrf = login(client, reviewer)
    form = claim_and_read(client, csrf, docs["pdf"])
    assert ("f.total", "279.34") in form and ("f.line_items.3.amount", "15") in form
    resp = client.post(f"/ui/documents/{docs['pdf']}/approve", headers={"HX-Request": "true"},
                       data=edit(form, f__total="279.84", f__line_items__3__amount="150.00"))
    assert resp.status_code == 200
    assert "2 fields corrected" in resp.text and "training example #" in resp.text
    # The next document (the ticket) is claimed and loaded in place.
    assert resp.headers["HX-Push-Url"] == f"/ui/documents/{docs['ticket']}"
    assert 'data-document="' + docs["ticket"] in resp.text

    [example] = fetch(settings, select(TrainingExample))
    assert example.document_id == docs["pdf"] and example.doc_type == "invoice"
    assert example.values["total"] == 279.84
    assert [row["amount"] for row in example.values["line_items"]] == [42.0, 70.0, 0.9, 150.0]
    assert example.origins["total"] == "human" and example.origins["line_items"] == "human"
    assert example.origins["vendor_name"] == "model"
    assert example.approver == reviewer
    [doc_text] = fetch(settings, select(ExtractionAttempt.document_id).where(ExtractionAttempt.engine == "human"))
    assert doc_text == docs["pdf"]
    [doc] = fetch(settings, select(Document).where(Document.id == docs["pdf"]))
    assert example.text == doc.text
    assert example.golden == is_golden(doc.content_sha256, settings.golden_share)

    changes = {r.field: (r.before, r.after) for r in fetch(settings, select(Review))}
    assert changes["total"] == (279.34, 279.84)
    assert changes["line_items"][1][3]["amount"] == 150.0 and set(changes) == {"total", "line_items"}
    [event] = fetch(settings, select(AuditEvent).where(AuditEvent.action == "review.approved"))
    assert event.actor == f"user:{reviewer}" and {c["field"] for c in event.data["changes"]} == {"total", "line_items"}
    [task] = fetch(settings, select(ReviewTask).where(ReviewTask.document_id == docs["pdf"]))
    assert task.state == APPROVED

    assert docs["pdf"] not in client.get("/ui/queue").text
    history = client.get(f"/ui/documents/{docs['pdf']}/history").text
    assert "changed total" in history and "279.34" in history and "279.84" in history
    assert f"Training example #{example.id}" in history


def test_a_stale_save_is_refused_and_nothing_is_written(app, settings, reviewer, docs):
    add_user(settings, "bob@example.com")
    rita, bob = app.test_client(), app.test_client()
    rita_csrf, bob_csrf = login(rita, reviewer), login(bob, "bob@example.com")
    rita_form = claim_and_read(rita, rita_csrf, docs["pdf"])
    expire_claim(settings, docs["pdf"])
    bob_form = claim_and_read(bob, bob_csrf, docs["pdf"])

    # Bob holds it now: Rita's save from her older page is refused and says who.
    resp = rita.post(f"/ui/documents/{docs['pdf']}/approve", data=edit(rita_form, f__total="1.00"),
                     headers={"HX-Request": "true"})
    assert resp.status_code == 409
    assert "changed this document since you opened it" in resp.text
    assert resp.headers["HX-Retarget"] == "#review-messages"
    assert count(settings, TrainingExample) == 0 and count(settings, Review) == 0

    # Bob approves; Rita's second try is refused again, Bob's values stay.
    assert bob.post(f"/ui/documents/{docs['pdf']}/approve", data=edit(bob_form, f__total="279.84")).status_code == 303
    resp = rita.post(f"/ui/documents/{docs['pdf']}/approve", data=edit(rita_form, f__total="1.00"),
                     headers={"HX-Request": "true"})
    assert resp.status_code == 409 and "approved already" in resp.text
    [example] = fetch(settings, select(TrainingExample))
    assert example.values["total"] == 279.84 and example.approver == "bob@example.com"


def test_a_new_extraction_makes_an_open_page_stale(client, settings, reviewer, docs):
    csrf = login(client, reviewer)
    form = claim_and_read(client, csrf, docs["pdf"])
    database = Database(settings.database_uri)
    with database.session() as session:
        session.add(ExtractionAttempt(document_id=docs["pdf"], engine="frontier", fields={}))
        session.commit()
    database.dispose()
    resp = client.post(f"/ui/documents/{docs['pdf']}/approve", data=edit(form), headers={"HX-Request": "true"})
    assert resp.status_code == 409 and count(settings, TrainingExample) == 0


def test_invalid_values_are_refused_with_the_field_named(client, settings, reviewer, docs):
    csrf = login(client, reviewer)
    form = claim_and_read(client, csrf, docs["pdf"])
    resp = client.post(f"/ui/documents/{docs['pdf']}/approve", headers={"HX-Request": "true"},
                       data=edit(form, f__total="lots", f__invoice_date="", f__currency="dollars"))
    assert resp.status_code == 422
    assert "total:" in resp.text and "invoice_date: a value is required" in resp.text and "currency" in resp.text
    assert count(settings, TrainingExample) == 0


def test_reject_needs_a_reason_and_records_it(client, settings, reviewer, docs):
    csrf = login(client, reviewer)
    form = dict(claim_and_read(client, csrf, docs["ticket"]))
    data = {"csrf_token": csrf, "version": form["version"], "attempt_id": form["attempt_id"]}
    resp = client.post(f"/ui/documents/{docs['ticket']}/reject", data={**data, "reason": "  "},
                       headers={"HX-Request": "true"})
    assert resp.status_code == 422
    resp = client.post(f"/ui/documents/{docs['ticket']}/reject", data={**data, "reason": "spam, not a ticket"})
    assert resp.status_code == 303
    [task] = fetch(settings, select(ReviewTask).where(ReviewTask.document_id == docs["ticket"]))
    assert task.state == REJECTED and task.reject_reason == "spam, not a ticket"
    [event] = fetch(settings, select(AuditEvent).where(AuditEvent.action == "review.rejected"))
    assert event.data == {"reason": "spam, not a ticket"}
    assert count(settings, TrainingExample) == 0


def test_skip_gives_the_claim_back_and_opens_the_next(client, settings, reviewer, docs):
    csrf = login(client, reviewer)
    claim_and_read(client, csrf, docs["pdf"])
    resp = client.post(f"/ui/documents/{docs['pdf']}/skip", data={"csrf_token": csrf})
    assert resp.headers["Location"].endswith(docs["ticket"])
    [task] = fetch(settings, select(ReviewTask).where(ReviewTask.document_id == docs["pdf"]))
    assert task.claimed_by_id is None


def test_line_items_can_be_reordered_added_and_removed(client, settings, reviewer, docs):
    csrf = login(client, reviewer)
    form = claim_and_read(client, csrf, docs["pdf"])
    rows = [(k, v) for k, v in form if k != "rows.line_items" and not k.startswith("f.line_items.2.")]
    # Page order 3, 0, 1, then a new row n1; row 2 removed.
    rows += [("rows.line_items", key) for key in ("3", "0", "1", "n1")]
    rows += [("f.line_items.n1.description", "Delivery"), ("f.line_items.n1.quantity", ""),
             ("f.line_items.n1.unit_price", ""), ("f.line_items.n1.amount", "9.50")]
    assert client.post(f"/ui/documents/{docs['pdf']}/approve", data=MultiDict(rows)).status_code == 303
    [example] = fetch(settings, select(TrainingExample))
    assert [r["description"] for r in example.values["line_items"]] == [
        "Luxury Truffles", "Beeswax XL", "Office Chair", "Delivery"]
    assert example.values["line_items"][3] == {"description": "Delivery", "quantity": None, "unit_price": None,
                                               "amount": 9.5}


def test_frontier_disagreement_shows_both_candidates(client, settings, reviewer):
    ticket = seed_ticket(settings, text="Where is my parcel? Order 4411. Mallory <mallory@example.com>",
                         uncertainty=0.5, frontier={"category": "delivery", "summary": "Parcel missing"})
    csrf = login(client, reviewer)
    assert "frontier disagreement" in client.get("/ui/queue").text
    page = client.get(f"/ui/documents/{ticket}").text
    assert "Alt+1 · model: refund" in page and "Alt+2 · frontier: delivery" in page
    assert "frontier: medium" not in page  # agreeing fields offer no choice
    form = claim_and_read(client, csrf, ticket)
    resp = client.post(f"/ui/documents/{ticket}/approve", data=edit(form, f__category="delivery"))
    assert resp.status_code == 303
    [example] = fetch(settings, select(TrainingExample))
    assert example.values["category"] == "delivery" and example.origins["category"] == "human"
    assert example.origins["priority"] == "frontier"  # agreed: the frontier confirmed the model


def test_bulk_approve_takes_only_documents_a_person_need_not_read(client, settings, reviewer, docs):
    clear = seed_ticket(settings, text="Hi, order 4411 never came. Mallory <mallory@example.com>",
                        filename="clear.txt", uncertainty=0.97, warnings=("page 2 left out: context budget",))
    csrf = login(client, reviewer)
    queue = client.get("/ui/queue").text
    assert f'id="sel-{clear}"' in queue
    assert f'id="sel-{docs["pdf"]}"' not in queue and f'id="sel-{docs["ticket"]}"' not in queue
    resp = client.post("/ui/bulk-approve", data=MultiDict([("csrf_token", csrf), ("document_id", clear),
                                                           ("document_id", docs["pdf"])]), follow_redirects=True)
    assert "Approved 1 document as extracted" in resp.text and f"Not approved {docs['pdf']}" in resp.text
    [example] = fetch(settings, select(TrainingExample))
    assert example.document_id == clear and set(example.origins.values()) == {"model"}
    [event] = fetch(settings, select(AuditEvent).where(AuditEvent.action == "review.approved"))
    assert event.data["bulk"] is True and event.data["changes"] == []
    assert count(settings, ReviewTask, ReviewTask.state == APPROVED) == 1


def test_engineers_pages_draw_versions_runs_and_stats(app, settings, docs):
    add_user(settings, "eddie@example.com", "engineer")
    report = {"doc_type": "invoice", "straight_through": 0.62, "target_precision": 0.99,
              "fields": {"total": {"accuracy": 0.97}, "vendor_name": {"accuracy": 0.88}},
              "calibration": [[0.5, 0.45], [0.9, 0.93]]}
    database = Database(settings.database_uri)
    with database.session() as session:
        session.add(ModelVersion(version="m-<b>2</b>", path="/models/2", metrics={"invoice": report}, active=True,
                                 doc_types=["invoice"]))
        session.add(ModelVersion(version="m-1", path="/models/1", metrics={}))
        session.add(TrainingRun(status="processing", base_model_version="m-1", metrics={"loss": [2.0, 1.5, 1.1]}))
        session.commit()
    database.dispose()
    eddie = app.test_client()
    login(eddie, "eddie@example.com")
    models = eddie.get("/ui/engineering/models").text
    assert "m-&lt;b&gt;2&lt;/b&gt;" in models and "<b>2</b>" not in models
    assert models.count('class="badge-active"') == 1 and "62.0%" in models
    assert "total: 97.0%" in models and "0.90 → 0.93" in models  # bar and calibration point titles
    runs = eddie.get("/ui/engineering/runs").text
    assert 'hx-trigger="every 5s"' in runs and "<polyline" in runs
    stats = eddie.get("/ui/engineering/stats?days=7").text
    assert "2 documents" in stats and "review 2" in stats and stats.count("<svg") == 6


def test_engineers_promote_and_roll_back_after_confirming(app, settings, tmp_path, reviewer):
    add_user(settings, "eddie@example.com", "engineer")
    database = Database(settings.database_uri)
    with database.session() as session:
        register_versions(session, tmp_path)
    database.dispose()
    eddie, rita = app.test_client(), app.test_client()
    csrf = login(eddie, "eddie@example.com")
    rita_csrf = login(rita, reviewer)

    page = eddie.get("/ui/engineering/models").text
    assert "/ui/engineering/models/m-2/promote" in page and "Roll back to" not in page
    assert "Promote m-2?" in eddie.get("/ui/engineering/models/m-2/promote").text
    assert eddie.post("/ui/engineering/models/m-2/promote").status_code == 400  # no CSRF token
    assert rita.post("/ui/engineering/models/m-2/promote", data={"csrf_token": rita_csrf}).status_code == 403
    resp = eddie.post("/ui/engineering/models/m-2/promote", data={"csrf_token": csrf}, follow_redirects=True)
    assert "m-2 is now the served model" in resp.text and "Roll back to m-1" in resp.text
    active = fetch(settings, select(ModelVersion.version).where(ModelVersion.status == "active"))
    assert active == ["m-2"]
    [event] = fetch(settings, select(AuditEvent).where(AuditEvent.action == "model.promoted",
                                                       AuditEvent.actor == "user:eddie@example.com"))
    assert event.data["previous"] == "m-1"

    # A rollback confirmed against an active version that has since changed does nothing.
    resp = eddie.post("/ui/engineering/models/rollback", data={"csrf_token": csrf, "active": "m-1"},
                      follow_redirects=True)
    assert "nothing was rolled back" in resp.text
    resp = eddie.post("/ui/engineering/models/rollback", data={"csrf_token": csrf, "active": "m-2"},
                      follow_redirects=True)
    assert "Rolled back from m-2 to m-1" in resp.text
    assert fetch(settings, select(ModelVersion.version).where(ModelVersion.status == "active")) == ["m-1"]


def update_run(settings, run_id: int, **values) -> None:
    """Change a run's row as the training job does while it runs."""
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            run = session.get(TrainingRun, run_id)
            for name, value in values.items():
                setattr(run, name, value)
            session.commit()
    finally:
        database.dispose()


def test_engineers_start_a_run_and_follow_it_live(app, settings, reviewer):
    from rq import Queue  # noqa: PLC0415
    from redis import Redis  # noqa: PLC0415

    add_user(settings, "eddie@example.com", "engineer")
    eddie, rita = app.test_client(), app.test_client()
    csrf = login(eddie, "eddie@example.com")
    rita_csrf = login(rita, reviewer)
    assert 'id="start-run"' in eddie.get("/ui/engineering/runs").text
    assert rita.post("/ui/engineering/runs", data={"csrf_token": rita_csrf}).status_code == 403
    assert eddie.post("/ui/engineering/runs", data={"steps": "5"}).status_code == 400  # no CSRF token

    resp = eddie.post("/ui/engineering/runs", data={"csrf_token": csrf, "steps": "0"}, follow_redirects=True)
    assert "Nothing was started: steps:" in resp.text and count(settings, TrainingRun) == 0

    resp = eddie.post("/ui/engineering/runs", data={"csrf_token": csrf, "steps": "5", "replay": ""})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/ui/engineering/runs/1")
    [run] = fetch(settings, select(TrainingRun))
    assert (run.status, run.requested_by, run.params) == ("queued", "user:eddie@example.com", {"steps": 5})
    connection = Redis.from_url(settings.redis_url)
    try:
        assert Queue("training", connection=connection).job_ids == [run.job_id]
    finally:
        connection.close()

    # A second request names the run under way and queues nothing.
    resp = eddie.post("/ui/engineering/runs", data={"csrf_token": csrf}, follow_redirects=True)
    assert "Only one training run at a time: run 1 is queued" in resp.text and count(settings, TrainingRun) == 1
    assert 'id="start-run" disabled' in eddie.get("/ui/engineering/runs").text

    page = eddie.get("/ui/engineering/runs/1").text
    assert 'hx-trigger="every 2s"' in page and "Waiting for a training worker" in page
    update_run(settings, 1, status="processing", progress={"stage": "train", "step": 3, "total": 10,
                                                           "loss": 1.23456, "eta_s": 120},
               log="10:00:01 started\n10:00:02 <script>alert(1)</script>\n", metrics={"loss": [2.0, 1.6, 1.2]})
    live = eddie.get("/ui/engineering/runs/1/live").text
    assert live.startswith("\n<section") or live.lstrip().startswith("<section")  # the fragment alone
    assert "Step 3 of 10" in live and '<progress id="run-progress" max="10" value="3">' in live
    assert "1.2346" in live and "about 2.0 min left" in live and "<polyline" in live
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in live and "<script>alert" not in live
    assert 'hx-trigger="every 2s"' in live

    update_run(settings, 1, status="done", slot=None, output_model_version="m-2", progress={"stage": "done"},
               metrics={"loss": [2.0, 1.6, 1.2], "gate": {"decision": "reject",
                                                          "reasons": ["overall accuracy 80.00% is below 90.00%"]}})
    live = eddie.get("/ui/engineering/runs/1/live").text
    assert "hx-trigger" not in live and 'data-status="done"' in live
    assert "m-2: rejected by the gate (overall accuracy 80.00% is below 90.00%)" in live
    log = eddie.get("/ui/engineering/runs/1/log")
    assert log.mimetype == "text/plain" and "<script>alert(1)</script>" in log.text
    assert rita.get("/ui/engineering/runs/1").status_code == 403
    assert eddie.get("/ui/engineering/runs/99").status_code == 404


# --- people ----------------------------------------------------------------------------


def test_docket_users_create_prompts_and_hashes(settings, monkeypatch):
    from config.settings import get_settings  # noqa: PLC0415
    from service.cli import main  # noqa: PLC0415

    monkeypatch.setenv("DOCKET_DATABASE_URL", settings.database_uri)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["users", "create", "--role", "engineer", "Erin@Example.com"],
                                    input="a long password\na long password\n")
        assert result.exit_code == 0, result.output
        [user] = fetch(settings, select(User))
        assert user.email == "erin@example.com" and user.role == "engineer"
        assert user.password_hash.startswith("$argon2id$") and "a long password" not in user.password_hash
        again = CliRunner().invoke(main, ["users", "create", "erin@example.com"], input="another password\n" * 2)
        assert again.exit_code != 0 and "already exists" in again.output
    finally:
        get_settings.cache_clear()


# --- pure parts ------------------------------------------------------------------------


def test_golden_hold_back_is_stable_and_near_its_share():
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    share = sum(is_golden(d, 0.2) for d in digests) / len(digests)
    assert 0.18 < share < 0.22
    assert [is_golden(d, 0.2) for d in digests[:50]] == [is_golden(d, 0.2) for d in digests[:50]]
    assert not any(is_golden(d, 0.0) for d in digests) and all(is_golden(d, 1.0) for d in digests)


def test_evidence_runs_cover_the_text_exactly_with_overlaps():
    text = "Total 279.84 USD"
    pieces = runs(text, [(6, 12, "total"), (6, 16, "amount_due"), (40, 50, "outside")])
    assert "".join(p for p, _ in pieces) == text
    assert pieces == [("Total ", ()), ("279.84", ("total", "amount_due")), (" USD", ("amount_due",))]


def test_form_values_are_typed_from_the_schema():
    invoice = load_document_types(Settings().schema_dir)["invoice"]
    data = {f"f.{spec.name}": "" for spec in invoice.fields if spec.kind != "array"}
    data.update({"f.vendor_name": " Acme   Ltd ", "f.invoice_date": "2026-11-23", "f.total": "1,234.50",
                 "f.currency": "eur"})
    values, errors = parse_values(invoice, MultiDict(data))
    assert errors == {}
    assert values["vendor_name"] == "Acme Ltd" and values["total"] == 1234.5 and values["currency"] == "EUR"
    assert values["invoice_number"] is None and values["line_items"] == []
    data["f.total"] = ""
    assert parse_values(invoice, MultiDict(data))[1] == {"total": "a value is required"}
