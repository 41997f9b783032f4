"""Who may call what: every route of the app, for every kind of caller, through real requests.

``MATRIX`` names each (method, rule) of ``app.url_map`` with what it requires
and how to call it so that an allowed caller succeeds; the expected answer
for each caller follows from that requirement:

- ``Public(status)``: everyone gets *status*, credentials or not.
- ``Scope(s, status)`` (the API): no key, a revoked key, a key of a disabled
  client, a forged key and a review-UI session get 401; a key with scope *s* (or ``admin``) gets *status*; any other
  key 403.
- ``Login(status)`` (the review UI): any active user gets *status*; no session,
  an API key (with any scope) or a deactivated account get the redirect to the
  login page.
- ``Role(status)`` (the engineers' pages): engineers and admins get *status*,
  reviewers 403, everyone else the redirect to the login page.

The keys are real keys, the sessions real logins through the login form, and
every unsafe UI request carries the CSRF token of its own session, so a refusal
is the access control's and never the CSRF check's. A route the matrix does not
list fails ``test_the_matrix_lists_every_route``. One database (SQLite) keeps it
fast: nothing here depends on the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from werkzeug.datastructures import MultiDict

from service import registry
from service.db import Database
from service.models import SCOPES, ApiClient, ApiKey, ModelVersion, TrainingRun, User, utcnow
from tests.review_fixtures import add_user, register_versions, seed_ticket
from tests.test_review_ui import TOKEN, login, review_form

# Admin keys that open nothing: revoked, of a client switched off, or a real key's prefix with a made-up secret.
DEAD_KEYS = ("key:revoked", "key:client-disabled", "key:forged")
KEYS = tuple(f"key:{scope}" for scope in SCOPES) + DEAD_KEYS
USERS = {"ui:reviewer": "reviewer", "ui:engineer": "engineer", "ui:admin": "admin"}
PRINCIPALS = ("anonymous", *KEYS, *USERS, "ui:deactivated")
TICKET = "From: dana@example.com\nSubject: VPN down\n\nSince this morning the VPN refuses my password. Urgent!"


# --- what each route requires --------------------------------------------------------


@dataclass(frozen=True)
class Public:
    status: int

    def expect(self, principal: str) -> int | str:
        return self.status


@dataclass(frozen=True)
class Scope:
    scope: str
    status: int

    def expect(self, principal: str) -> int | str:
        if principal not in KEYS or principal in DEAD_KEYS:
            return 401
        return self.status if principal in (f"key:{self.scope}", "key:admin") else 403


@dataclass(frozen=True)
class AnyScope:
    """Any one of *scopes* (or admin) will do."""

    scopes: tuple[str, ...]
    status: int

    def expect(self, principal: str) -> int | str:
        if principal not in KEYS or principal in DEAD_KEYS:
            return 401
        return self.status if principal in {f"key:{s}" for s in self.scopes} | {"key:admin"} else 403


@dataclass(frozen=True)
class Login:
    status: int

    def expect(self, principal: str) -> int | str:
        return self.status if principal in USERS else "login"


@dataclass(frozen=True)
class Role:
    status: int

    def expect(self, principal: str) -> int | str:
        if principal not in USERS:
            return "login"
        return 403 if principal == "ui:reviewer" else self.status


# --- the world the requests run in ---------------------------------------------------


@dataclass
class Caller:
    """One principal: its own cookie jar, its API key header, its CSRF token."""

    name: str
    client: Any
    headers: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    @property
    def is_user(self) -> bool:
        return self.name in USERS

    def get(self, path: str, **kw):
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, data: dict[str, str] | list[tuple[str, str]] | None = None, **kw):
        """A form post with this caller's CSRF token (unless *data* brings one)."""
        form = MultiDict(data or {})
        form.setdefault("csrf_token", self.csrf)
        return self.client.post(path, data=form, headers=self.headers, **kw)


@dataclass
class World:
    settings: Any
    app: Any
    document_id: str  # submitted through the API by the keys' client
    review_id: str  # seeded, awaiting review
    run_id: int
    database: Database

    def fresh_review(self) -> str:
        return seed_ticket(self.settings, text=TICKET.replace("VPN", f"VPN {utcnow().timestamp()}"),
                           filename="ticket.txt")

    def versions(self) -> tuple[str, str]:
        """(the active version, the other one)."""
        with self.database.session() as session:
            rows = {v.version: v.status for v in session.query(ModelVersion)}
        active = next(v for v, status in rows.items() if status == "active")
        return active, next(v for v in rows if v != active)

    def release_training_slot(self) -> None:
        with self.database.session() as session:
            session.execute(update(TrainingRun).where(TrainingRun.slot.is_not(None))
                            .values(slot=None, status="failed", error="released by the test"))
            session.commit()

    def give_webhook(self, present: bool) -> None:
        """Set or clear the keys' client's webhook, so each call meets the state it is about."""
        url, secret = ("https://hooks.example.com/docket", "s" * 43) if present else (None, None)
        with self.database.session() as session:
            session.execute(update(ApiClient).where(ApiClient.name == "test")
                            .values(webhook_url=url, webhook_secret=secret))
            session.commit()

    def make_rollback_possible(self) -> None:
        """Promote the other version, so the active one has a previous to roll back to."""
        _, other = self.versions()
        with self.database.session() as session:
            registry.promote(session, other, "test")


def claimed_review(world: World, caller: Caller) -> str:
    """A fresh document awaiting review, claimed by *caller* through the UI when it can claim."""
    document_id = world.fresh_review()
    if caller.is_user:
        assert caller.post(f"/ui/documents/{document_id}/claim").status_code == 303
    return document_id


def approve(world: World, caller: Caller):
    document_id = claimed_review(world, caller)
    form = review_form(caller.client, document_id) if caller.is_user else []
    return caller.post(f"/ui/documents/{document_id}/approve", data=[(k, v) for k, v in form if k != "csrf_token"])


def reject(world: World, caller: Caller):
    document_id = claimed_review(world, caller)
    form = dict(review_form(caller.client, document_id)) if caller.is_user else {}
    return caller.post(f"/ui/documents/{document_id}/reject", data={
        "version": form.get("version", "0"), "attempt_id": form.get("attempt_id", ""), "reason": "not a ticket"})


def promote_api(world: World, caller: Caller):
    _, other = world.versions()
    return caller.post(f"/v1/models/{other}/promote")


def rollback_api(world: World, caller: Caller):
    world.make_rollback_possible()
    return caller.post("/v1/models/rollback")


def promote_ui(world: World, caller: Caller):
    _, other = world.versions()
    return caller.post(f"/ui/engineering/models/{other}/promote")


def rollback_ui(world: World, caller: Caller):
    world.make_rollback_possible()
    active, _ = world.versions()
    return caller.post("/ui/engineering/models/rollback", data={"active": active})


def training_run(world: World, caller: Caller):
    world.release_training_slot()
    return caller.client.post("/v1/training-runs", json={}, headers=caller.headers)


def start_run_ui(world: World, caller: Caller):
    world.release_training_slot()
    return caller.post("/ui/engineering/runs", data={"steps": "3"})


def put_webhook(world: World, caller: Caller):
    world.give_webhook(False)
    return caller.client.put("/v1/webhook", json={"url": "https://hooks.example.com/docket"}, headers=caller.headers)


def delete_webhook(world: World, caller: Caller):
    world.give_webhook(True)
    return caller.client.delete("/v1/webhook", headers=caller.headers)


def get_webhook(world: World, caller: Caller):
    world.give_webhook(True)
    return caller.get("/v1/webhook")


Call = Callable[[World, Caller], Any]


def get(path: str) -> Call:
    return lambda world, caller: caller.get(path.format(w=world))


def post(path: str, **data: str) -> Call:
    return lambda world, caller: caller.post(path.format(w=world), data=data)


MATRIX: dict[tuple[str, str], tuple[Any, Call]] = {
    # The API: bearer keys only.
    ("POST", "/v1/documents"): (Scope("submit", 202), lambda w, c: c.client.post(
        "/v1/documents", json={"doc_type": "ticket", "text": TICKET}, headers=c.headers)),
    ("GET", "/v1/documents"): (Scope("read", 200), get("/v1/documents")),
    ("GET", "/v1/documents/<document_id>"): (Scope("read", 200), get("/v1/documents/{w.document_id}")),
    ("GET", "/v1/documents/<document_id>/file"): (Scope("read", 200), get("/v1/documents/{w.document_id}/file")),
    ("GET", "/v1/schemas"): (Scope("read", 200), get("/v1/schemas")),
    ("GET", "/v1/schemas/<doc_type>"): (Scope("read", 200), get("/v1/schemas/invoice")),
    ("GET", "/v1/stats"): (Scope("read", 200), get("/v1/stats")),
    ("GET", "/metrics"): (Scope("read", 200), get("/metrics")),
    ("POST", "/v1/training-runs"): (Scope("train", 202), training_run),
    ("GET", "/v1/training-runs/<int:run_id>"): (Scope("train", 200), get("/v1/training-runs/{w.run_id}")),
    ("GET", "/v1/models"): (Scope("train", 200), get("/v1/models")),
    ("POST", "/v1/models/<path:version>/promote"): (Scope("admin", 200), promote_api),
    ("POST", "/v1/models/rollback"): (Scope("admin", 200), rollback_api),
    ("GET", "/v1/webhook"): (AnyScope(("submit", "train"), 200), get_webhook),
    ("PUT", "/v1/webhook"): (AnyScope(("submit", "train"), 201), put_webhook),
    ("DELETE", "/v1/webhook"): (AnyScope(("submit", "train"), 204), delete_webhook),
    ("GET", "/v1/webhook/deliveries"): (AnyScope(("submit", "train"), 200), get("/v1/webhook/deliveries")),
    # Public: health, the API's description and its documentation pages.
    ("GET", "/healthz"): (Public(200), get("/healthz")),
    ("GET", "/readyz"): (Public(503), get("/readyz")),  # the test settings have no model
    ("GET", "/openapi.json"): (Public(200), get("/openapi.json")),
    ("GET", "/docs/openapi.json"): (Public(200), get("/docs/openapi.json")),
    ("GET", "/docs/swagger/"): (Public(200), get("/docs/swagger/")),
    ("GET", "/docs/swagger/oauth2-redirect.html/"): (Public(200), get("/docs/swagger/oauth2-redirect.html/")),
    ("GET", "/docs/redoc/"): (Public(200), get("/docs/redoc/")),
    ("GET", "/docs/scalar/"): (Public(200), get("/docs/scalar/")),
    # The review UI: its login page and its own static files are public.
    ("GET", "/ui/login"): (Public(200), get("/ui/login")),
    ("POST", "/ui/login"): (Public(401), post("/ui/login", email="nobody@example.com", password="wrong password")),
    ("GET", "/ui/static/<path:filename>"): (Public(200), get("/ui/static/review.css")),
    ("GET", "/ui/"): (Login(302), get("/ui/")),
    ("GET", "/ui/queue"): (Login(200), get("/ui/queue")),
    ("POST", "/ui/next"): (Login(303), post("/ui/next")),
    ("POST", "/ui/bulk-approve"): (Login(303), post("/ui/bulk-approve")),
    ("GET", "/ui/documents/<document_id>"): (Login(200), get("/ui/documents/{w.review_id}")),
    ("GET", "/ui/documents/<document_id>/file"): (Login(200), get("/ui/documents/{w.review_id}/file")),
    ("GET", "/ui/documents/<document_id>/history"): (Login(200), get("/ui/documents/{w.review_id}/history")),
    ("POST", "/ui/documents/<document_id>/claim"): (Login(303), lambda w, c: c.post(
        f"/ui/documents/{w.fresh_review()}/claim")),
    ("POST", "/ui/documents/<document_id>/skip"): (Login(303), lambda w, c: c.post(
        f"/ui/documents/{claimed_review(w, c)}/skip")),
    ("POST", "/ui/documents/<document_id>/approve"): (Login(303), approve),
    ("POST", "/ui/documents/<document_id>/reject"): (Login(303), reject),
    ("GET", "/ui/engineering/models"): (Role(200), get("/ui/engineering/models")),
    ("GET", "/ui/engineering/runs"): (Role(200), get("/ui/engineering/runs")),
    ("POST", "/ui/engineering/runs"): (Role(303), start_run_ui),
    ("GET", "/ui/engineering/runs/<int:run_id>"): (Role(200), get("/ui/engineering/runs/{w.run_id}")),
    ("GET", "/ui/engineering/runs/<int:run_id>/live"): (Role(200), get("/ui/engineering/runs/{w.run_id}/live")),
    ("GET", "/ui/engineering/runs/<int:run_id>/log"): (Role(200), get("/ui/engineering/runs/{w.run_id}/log")),
    ("GET", "/ui/engineering/stats"): (Role(200), get("/ui/engineering/stats")),
    ("GET", "/ui/engineering/models/<path:version>/promote"): (Role(200), lambda w, c: c.get(
        f"/ui/engineering/models/{w.versions()[1]}/promote")),
    ("POST", "/ui/engineering/models/<path:version>/promote"): (Role(303), promote_ui),
    ("GET", "/ui/engineering/models/rollback"): (Role(200), get("/ui/engineering/models/rollback")),
    ("POST", "/ui/engineering/models/rollback"): (Role(303), rollback_ui),
    # Last: it ends the session it is called with.
    ("POST", "/ui/logout"): (Login(302), post("/ui/logout")),
}


def app_routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
def world(make_settings, sqlite_url, redis_url, make_app, make_key, tmp_path) -> World:
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url)
    app = make_app(settings)
    submitter = make_key("submit", settings=settings)
    resp = app.test_client().post("/v1/documents", json={"doc_type": "ticket", "text": TICKET},
                                  headers={"Authorization": f"Bearer {submitter}"})
    assert resp.status_code == 202, resp.text
    database = Database(settings.database_uri)
    with database.session() as session:
        register_versions(session, tmp_path)
        run = TrainingRun(status="done", requested_by="test", finished_at=utcnow() - timedelta(days=1))
        session.add(run)
        session.commit()
        run_id = run.id
    yield World(settings, app, resp.get_json()["id"], seed_ticket(settings), run_id, database)
    database.dispose()


@pytest.fixture
def callers(world: World, make_key) -> dict[str, Caller]:
    out = {"anonymous": Caller("anonymous", world.app.test_client())}
    for name in KEYS:
        scope = "admin" if name in DEAD_KEYS else name.split(":")[1]
        key = make_key(scope, client="gone" if name == "key:client-disabled" else "test", settings=world.settings)
        key = key[:-8] + "forgedXX" if name == "key:forged" else key
        out[name] = Caller(name, world.app.test_client(), {"Authorization": f"Bearer {key}"})
    revoked = out["key:revoked"].headers["Authorization"].removeprefix("Bearer dk_").split("_")[0]
    with world.database.session() as session:
        session.execute(update(ApiKey).where(ApiKey.prefix == revoked).values(revoked_at=utcnow()))
        session.execute(update(ApiClient).where(ApiClient.name == "gone").values(active=False))
        session.commit()
    for name, role in {**USERS, "ui:deactivated": "admin"}.items():
        email = f"{name.split(':')[1]}@example.com"
        add_user(world.settings, email, role)
        caller = Caller(name, world.app.test_client())
        caller.csrf = login(caller.client, email)
        out[name] = caller
    with world.database.session() as session:
        session.execute(update(User).where(User.email == "deactivated@example.com").values(active=False))
        session.commit()
    for caller in out.values():  # everyone without a session takes a token from the login page, as a browser would
        if not caller.csrf:
            caller.csrf = TOKEN.search(caller.client.get("/ui/login").text).group(1)
    return out


# --- the tests -----------------------------------------------------------------------


def test_the_matrix_lists_every_route(make_app, make_settings, tmp_path):
    app = make_app(make_settings(database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}"))
    routes = app_routes(app)
    unlisted = sorted(routes - set(MATRIX))
    gone = sorted(set(MATRIX) - routes)
    assert not unlisted, f"routes with no access rule in MATRIX: {unlisted}"
    assert not gone, f"MATRIX lists routes the app no longer has: {gone}"


def check(resp, principal: str, expected: int | str) -> str | None:
    """Why *resp* is not the expected answer, or None."""
    got = resp.status_code
    location = resp.headers.get("Location", "").removeprefix("http://localhost")
    if expected == "login":
        if got == 302 and location.startswith("/ui/login"):
            return None
        return f"expected the redirect to /ui/login, got {got} {location}"
    if got != expected:
        return f"expected {expected}, got {got} {location or resp.get_data(as_text=True)[:160]!r}"
    if got in (401, 403) and resp.request.path.startswith(("/v1/", "/metrics")):
        body = resp.get_json(silent=True) or {}
        slug = "unauthorized" if got == 401 else "forbidden"
        if resp.mimetype != "application/problem+json" or not body.get("type", "").endswith(slug):
            return f"expected a {slug} problem, got {resp.mimetype} {body}"
        if got == 401 and not resp.headers.get("WWW-Authenticate", "").startswith("Bearer"):
            return "401 without WWW-Authenticate: Bearer"
    if got == 403 and resp.request.path.startswith("/ui/") and "does not give you access" not in resp.text:
        return "UI 403 without its message"
    return None


def test_every_route_answers_every_caller_as_the_matrix_says(world: World, callers: dict[str, Caller]):
    failures = []
    for (method, rule), (requirement, call) in MATRIX.items():
        for principal in PRINCIPALS:
            resp = call(world, callers[principal])
            assert resp.request.method == method, (method, rule)
            why = check(resp, principal, requirement.expect(principal))
            if why:
                failures.append(f"{method} {rule} as {principal}: {why}")
    for principal in USERS:  # the logout at the end of the matrix really ended each session
        why = check(callers[principal].get("/ui/queue"), principal, "login")
        if why:
            failures.append(f"GET /ui/queue after logging out as {principal}: {why}")
    assert not failures, "\n".join(failures)


def test_sessions_and_keys_each_stay_on_their_own_side(world: World, callers: dict[str, Caller], make_key):
    """A reviewer's browser that also sends a key: the API judges the key alone, the UI the session alone;
    htmx requests without a session are told where to log in."""
    rita = callers["ui:reviewer"]
    reader = {"Authorization": f"Bearer {make_key('read', settings=world.settings)}"}
    admin = {"Authorization": f"Bearer {make_key('admin', settings=world.settings)}"}
    assert rita.client.get("/v1/documents", headers=reader).status_code == 200
    assert rita.client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET},
                            headers=reader).status_code == 403
    assert rita.client.get("/ui/engineering/models", headers=admin).status_code == 403
    for principal in ("anonymous", "key:admin"):
        caller = callers[principal]
        resp = caller.client.get("/ui/queue", headers={**caller.headers, "HX-Request": "true"})
        assert resp.status_code == 401 and resp.headers["HX-Redirect"] == "/ui/login"
