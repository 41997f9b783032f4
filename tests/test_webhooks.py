"""Webhooks end to end: real Redis, the real rq worker, a real HTTP receiver on loopback, both databases.

The receiver is pytest-httpserver on 127.0.0.1; every delivery it gets is
checked with :func:`service.webhooks.signing.verify_signature`, the helper
the README tells receivers to copy.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import ssl
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select, update
from werkzeug import Response

from config.settings import get_settings
from service import cli, registry, reviews, tasks
from service.db import Database
from service.doctypes import load_document_types
from service.models import DONE, ApiClient, AuditEvent, Document, User, WebhookDelivery
from service.queue import NOTIFICATIONS
from service.webhooks import delivery
from service.webhooks import events as webhook_events
from service.webhooks import registration
from service.webhooks.signing import EVENT_HEADER, ID_HEADER, TIMESTAMP_HEADER, verify_signature
from tests.conftest import run_jobs, settings_env, wait_until
from tests.review_fixtures import add_user, seed_ticket
from tests.test_ingest import blank_pdf

HOOK = "/hook"
NOTE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "note",
    "description": "A short note to a team.",
    "type": "object",
    "properties": {"urgent": {"type": ["boolean", "null"], "description": "Whether the note asks for haste."}},
    "required": ["urgent"],
    "additionalProperties": False,
}


@pytest.fixture
def receiver(httpserver_ipv4):
    """A real HTTP server on 127.0.0.1 that answers 200 unless a test says otherwise."""
    return httpserver_ipv4


def ok_receiver(receiver):
    receiver.expect_request(HOOK, method="POST").respond_with_data("ok")
    return receiver


def set_webhook(settings, client: str, url: str) -> str:
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            return registration.set_webhook(session, registration.find_client(session, client), url, "test")
    finally:
        database.dispose()


def attempts(settings) -> list[WebhookDelivery]:
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
    finally:
        database.dispose()


def received(receiver) -> list[tuple[dict, bytes, dict]]:
    """(headers, raw body, parsed body) of every request the receiver got, in order."""
    return [(dict(req.headers), req.get_data(), json.loads(req.get_data())) for req, _ in receiver.log]


@contextmanager
def attached(settings):
    """A session whose webhook events are queued on the test Redis after each commit, as the app's are."""
    connection = Redis.from_url(settings.redis_url)
    database = webhook_events.attach(Database(settings.database_uri), settings, connection)
    try:
        with database.session() as session:
            yield session
    finally:
        database.dispose()
        connection.close()


def work_with_scheduler(settings, until, timeout: float = 20.0) -> None:
    """Run the real worker, with rq's scheduler, until *until* holds: retries wait out their backoff."""
    connection = Redis.from_url(settings.redis_url)
    tasks.init_runtime(settings)
    try:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "the retries did not finish in time"
            tasks.make_worker(connection).work(burst=True, with_scheduler=True, logging_level="WARNING")
            time.sleep(0.2)
    finally:
        connection.close()


def submit_scan(client, key: str) -> str:
    form = {"file": (io.BytesIO(blank_pdf()), "scan.pdf", "application/pdf"), "doc_type": "invoice"}
    resp = client.post("/v1/documents", data=form, headers={"Authorization": f"Bearer {key}"},
                       content_type="multipart/form-data")
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def assert_signed(headers: dict, raw: bytes, body: dict, secret: str, event: str) -> None:
    assert headers[EVENT_HEADER] == event == body["type"]
    assert headers[ID_HEADER] == body["id"]
    assert abs(int(headers[TIMESTAMP_HEADER]) - time.time()) < 60
    assert verify_signature(secret, headers, raw)
    assert not verify_signature(secret + "x", headers, raw)


# --- the four events ---------------------------------------------------------


def test_a_document_read_straight_through_delivers_a_signed_completed_event(model_settings, make_app, make_key,
                                                                            receiver, tmp_path):
    """A real extraction with the tiny model: a one-field schema and no threshold send it straight through."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "note.json").write_text(json.dumps(NOTE_SCHEMA))
    settings = model_settings.model_copy(update={"schema_dir": schemas, "default_threshold": 0.0})
    key = make_key("submit,read", client="erp", settings=settings)
    secret = set_webhook(settings, "erp", ok_receiver(receiver).url_for(HOOK))
    client = make_app(settings).test_client()
    resp = client.post("/v1/documents", json={"doc_type": "note", "text": "Please call the plumber today."},
                       headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 202, resp.get_json()
    doc_id = resp.get_json()["id"]

    run_jobs(settings)

    doc = client.get(f"/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {key}"}).get_json()
    assert (doc["status"], doc["route"]) == ("done", "straight_through")
    [(headers, raw, body)] = received(receiver)
    assert_signed(headers, raw, body, secret, "document.completed")
    assert body["data"]["id"] == doc_id
    assert body["data"]["route"] == "straight_through"
    assert body["data"]["url"] == f"/v1/documents/{doc_id}"
    [row] = attempts(settings)
    assert (row.delivery_id, row.event, row.attempt, row.outcome, row.status_code, row.error) == (
        body["id"], "document.completed", 1, "delivered", 200, None)
    assert row.url == receiver.url_for(HOOK)


def test_review_routing_and_the_reviewers_decision_are_both_delivered(settings, make_app, make_key, receiver):
    """A scan without a text layer goes to review (needs_review); a reviewer rejects it (reviewed)."""
    key = make_key("submit,read", client="erp")
    make_key("submit,read", client="other")
    secret = set_webhook(settings, "erp", ok_receiver(receiver).url_for(HOOK))
    set_webhook(settings, "other", receiver.url_for("/other"))  # hears nothing of erp's documents
    doc_id = submit_scan(make_app(settings).test_client(), key)
    run_jobs(settings)

    [(headers, raw, body)] = received(receiver)
    assert_signed(headers, raw, body, secret, "document.needs_review")
    assert body["data"]["id"] == doc_id
    assert body["data"]["reasons"] == [{"code": "no_text_layer", "message": "no text layer"}]

    user_id = add_user(settings, "rita@example.com")
    with attached(settings) as session:
        user = session.get(User, user_id)
        task = reviews.claim(session, doc_id, user, 15)
        reviews.reject(session, doc_id, user, version=task.version, attempt_id=None, reason="blank scan")
    run_jobs(settings)

    assert len(receiver.log) == 2
    headers, raw, body = received(receiver)[1]
    assert_signed(headers, raw, body, secret, "document.reviewed")
    assert (body["data"]["id"], body["data"]["decision"], body["data"]["reason"]) == (doc_id, "rejected", "blank scan")
    assert [r.event for r in attempts(settings)] == ["document.needs_review", "document.reviewed"]
    assert {r.outcome for r in attempts(settings)} == {"delivered"}


def test_an_approval_is_delivered_to_the_client_that_submitted_the_document(settings, make_key, receiver):
    make_key("submit,read", client="erp")
    secret = set_webhook(settings, "erp", ok_receiver(receiver).url_for(HOOK))
    doc_id = seed_ticket(settings)
    user_id = add_user(settings, "rita@example.com")
    with attached(settings) as session:
        client_id = session.scalar(select(ApiClient.id).where(ApiClient.name == "erp"))
        session.execute(update(Document).where(Document.id == doc_id).values(client_id=client_id))
        session.commit()
        user = session.get(User, user_id)
        task = reviews.claim(session, doc_id, user, 15)
        doc = session.get(Document, doc_id)
        values = {name: result["value"] for name, result in doc.latest_extraction.fields.items()}
        reviews.approve(session, load_document_types(settings.schema_dir)["ticket"], doc_id, user, version=task.version,
                        attempt_id=doc.latest_extraction.id, values=values, golden_share=0.0)
    run_jobs(settings)

    [(headers, raw, body)] = received(receiver)
    assert_signed(headers, raw, body, secret, "document.reviewed")
    assert (body["data"]["id"], body["data"]["decision"], body["data"]["reason"]) == (doc_id, "approved", None)


def test_a_promotion_goes_to_clients_whose_keys_may_train(settings, make_key, receiver, tmp_path):
    for name, scopes in (("trainer", "train"), ("ops", "admin"), ("erp", "submit,read")):
        make_key(scopes, client=name)
    secrets = {name: set_webhook(settings, name, receiver.url_for(f"/{name}")) for name in ("trainer", "ops", "erp")}
    for name in secrets:
        receiver.expect_request(f"/{name}", method="POST").respond_with_data("ok")
    folder = tmp_path / "model-v2"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"not really a model; the registry only hashes it")
    with attached(settings) as session:
        registry.register(session, version="v2", path=folder, actor="test")
        session.commit()
        registry.promote(session, "v2", "test", reason="manual")
    run_jobs(settings)

    by_path = {req.path: req for req, _ in receiver.log}
    assert set(by_path) == {"/trainer", "/ops"}  # erp's key may not train: it is not told
    for name in ("trainer", "ops"):
        req = by_path[f"/{name}"]
        body = json.loads(req.get_data())
        assert (body["type"], body["data"]["version"], body["data"]["reason"]) == ("model.promoted", "v2", "manual")
        assert verify_signature(secrets[name], dict(req.headers), req.get_data())
        assert not verify_signature(secrets["erp"], dict(req.headers), req.get_data())
    assert len({json.loads(req.get_data())["id"] for req in by_path.values()}) == 2  # one delivery id each


def test_a_promotion_from_the_cli_is_delivered(make_settings, sqlite_url, redis_url, make_key, receiver, tmp_path):
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url)
    make_key("train", client="lab", settings=settings)
    secret = set_webhook(settings, "lab", ok_receiver(receiver).url_for(HOOK))
    folder = tmp_path / "model-v3"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(b"stand-in artifact")
    database = Database(settings.database_uri)
    with database.session() as session:
        registry.register(session, version="v3", path=folder, actor="test")
        session.commit()
    database.dispose()
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.main, ["models", "promote", "v3"], env=settings_env(settings))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    run_jobs(settings)

    [(headers, raw, body)] = received(receiver)
    assert_signed(headers, raw, body, secret, "model.promoted")
    assert (body["data"]["version"], body["data"]["reason"]) == ("v3", "manual promotion from the CLI")


def test_an_event_staged_in_a_rolled_back_transaction_is_never_queued(settings, make_key, receiver, redis_conn):
    make_key("submit,read", client="erp")
    set_webhook(settings, "erp", ok_receiver(receiver).url_for(HOOK))
    doc_id = seed_ticket(settings)
    with attached(settings) as session:
        session.execute(update(Document).where(Document.id == doc_id).values(
            client_id=session.scalar(select(ApiClient.id).where(ApiClient.name == "erp"))))
        session.commit()
        webhook_events.document_reviewed(session, session.get(Document, doc_id), "approved")
        session.rollback()
        session.commit()  # a later commit must not send what the rollback dropped
    assert Queue(NOTIFICATIONS, connection=redis_conn).count == 0


# --- retries, refusals, failures ----------------------------------------------


def test_a_500_is_retried_after_the_backoff_and_every_attempt_is_logged(settings, make_app, make_key, receiver):
    settings = settings.model_copy(update={"webhook_retry_intervals_s": [2, 2]})
    key = make_key("submit,read", client="erp")
    secret = set_webhook(settings, "erp", receiver.url_for(HOOK))
    receiver.expect_oneshot_request(HOOK, method="POST").respond_with_data("busy", status=500)
    receiver.expect_request(HOOK, method="POST").respond_with_data("ok")
    submit_scan(make_app(settings).test_client(), key)

    work_with_scheduler(settings, until=lambda: any(r.outcome == "delivered" for r in attempts(settings)))

    first, second = attempts(settings)
    assert (first.attempt, first.outcome, first.status_code, first.error) == (
        1, "retrying", 500, "the receiver answered HTTP 500")
    assert (second.attempt, second.outcome, second.status_code, second.error) == (2, "delivered", 200, None)
    assert first.delivery_id == second.delivery_id
    # It waited out the backoff: rq schedules to the whole second, so a 2 s interval is at least 1 s.
    assert (second.created_at - first.created_at).total_seconds() >= 1.0
    (h1, raw1, b1), (h2, raw2, b2) = received(receiver)
    assert raw1 == raw2 and h1[ID_HEADER] == h2[ID_HEADER] == b1["id"]  # the same event, signed again
    assert verify_signature(secret, h1, raw1) and verify_signature(secret, h2, raw2)


def test_a_receiver_that_always_fails_is_tried_until_the_retries_run_out(settings, make_app, make_key, receiver,
                                                                        redis_conn, caplog):
    caplog.set_level(logging.DEBUG)
    settings = settings.model_copy(update={"webhook_retry_intervals_s": [0, 0]})
    key = make_key("submit,read", client="erp")
    secret = set_webhook(settings, "erp", receiver.url_for(HOOK))
    receiver.expect_request(HOOK, method="POST").respond_with_data("down", status=503)
    submit_scan(make_app(settings).test_client(), key)

    run_jobs(settings)

    rows = attempts(settings)
    assert [(r.attempt, r.outcome, r.status_code) for r in rows] == [
        (1, "retrying", 503), (2, "retrying", 503), (3, "failed", 503)]
    assert len(receiver.log) == 3
    job = Job.fetch(f"webhook-{rows[0].delivery_id}", connection=redis_conn)
    assert job.get_status() == JobStatus.FAILED
    assert secret not in repr(job.args) + repr(job.kwargs)  # the secret never travels through Redis
    assert "attempt 3 failed" in caplog.text  # the delivery log was captured ...
    assert secret not in caplog.text  # ... and never names the secret


def test_a_loopback_url_is_refused_when_private_addresses_are_not_allowed(settings, make_app, make_key, receiver,
                                                                        redis_conn):
    settings = settings.model_copy(update={"webhook_allow_private": False, "webhook_retry_intervals_s": [0, 0]})
    key = make_key("submit,read", client="erp")
    set_webhook(settings, "erp", ok_receiver(receiver).url_for(HOOK))
    submit_scan(make_app(settings).test_client(), key)

    run_jobs(settings)

    [row] = attempts(settings)  # refused once, not retried
    assert (row.attempt, row.outcome, row.status_code) == (1, "refused", None)
    assert "127.0.0.1, a loopback address" in row.error
    assert len(receiver.log) == 0
    assert Job.fetch(f"webhook-{row.delivery_id}", connection=redis_conn).get_status() == JobStatus.FINISHED


def test_a_redirect_is_not_followed(settings, make_app, make_key, receiver):
    settings = settings.model_copy(update={"webhook_retry_intervals_s": []})
    key = make_key("submit,read", client="erp")
    set_webhook(settings, "erp", receiver.url_for(HOOK))
    receiver.expect_request(HOOK, method="POST").respond_with_response(
        Response(status=307, headers={"Location": receiver.url_for("/elsewhere")}))
    receiver.expect_request("/elsewhere").respond_with_data("should not be reached")
    submit_scan(make_app(settings).test_client(), key)

    run_jobs(settings)

    [row] = attempts(settings)
    assert (row.outcome, row.status_code, row.error) == ("failed", 307, "the receiver answered HTTP 307")
    assert [req.path for req, _ in receiver.log] == [HOOK]


def test_an_unreachable_receiver_is_a_recorded_failure(settings, make_app, make_key):
    settings = settings.model_copy(update={"webhook_retry_intervals_s": [0]})
    key = make_key("submit,read", client="erp")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    set_webhook(settings, "erp", f"http://127.0.0.1:{port}{HOOK}")
    submit_scan(make_app(settings).test_client(), key)
    run_jobs(settings)
    assert [(r.outcome, r.status_code) for r in attempts(settings)] == [("retrying", None), ("failed", None)]
    assert "could not be reached" in attempts(settings)[-1].error


def test_a_receiver_slower_than_the_timeout_is_a_recorded_failure(settings, make_app, make_key, receiver):
    settings = settings.model_copy(update={"webhook_timeout_s": 0.3, "webhook_retry_intervals_s": []})
    key = make_key("submit,read", client="erp")
    set_webhook(settings, "erp", receiver.url_for(HOOK))

    def slow(_request):
        time.sleep(1.5)
        return Response("too late")

    receiver.expect_request(HOOK, method="POST").respond_with_handler(slow)
    submit_scan(make_app(settings).test_client(), key)
    run_jobs(settings)
    wait_until(lambda: receiver.log, timeout=10, what="the slow answer")  # done before the next test shares it

    [row] = attempts(settings)
    assert (row.outcome, row.status_code) == ("failed", None)
    assert "ReadTimeoutError: the receiver did not answer in time" in row.error  # it gave up at the timeout


def test_a_removed_webhook_drops_deliveries_still_queued(settings, make_app, make_key, receiver, redis_conn):
    key = make_key("submit,read", client="erp")
    set_webhook(settings, "erp", ok_receiver(receiver).url_for(HOOK))
    doc_id = submit_scan(make_app(settings).test_client(), key)
    connection = Redis.from_url(settings.redis_url)
    tasks.init_runtime(settings)
    tasks.make_worker(connection, ("extraction",)).work(burst=True, logging_level="WARNING")  # queues the event
    connection.close()
    assert Queue(NOTIFICATIONS, connection=redis_conn).count == 1
    with attached(settings) as session:
        registration.remove_webhook(session, registration.find_client(session, "erp"), "test")
    run_jobs(settings)
    assert len(receiver.log) == 0 and attempts(settings) == []
    assert doc_id


def test_redis_down_while_emitting_leaves_the_document_done(settings, make_key, receiver, caplog):
    """The event cannot be queued: a warning says so and the document is still finished."""
    make_key("submit,read", client="erp")
    set_webhook(settings, "erp", receiver.url_for(HOOK))
    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})  # nothing listens there
    database = Database(settings.database_uri)
    with database.session() as session:
        client_id = session.scalar(select(ApiClient.id).where(ApiClient.name == "erp"))
        doc = Document(client_id=client_id, doc_type="invoice", media_type="application/pdf",
                       content_sha256="0" * 64, size_bytes=1, has_text_layer=False)
        session.add(doc)
        session.commit()
        doc_id = doc.id
    database.dispose()

    tasks.init_runtime(dead)
    with caplog.at_level(logging.WARNING):
        result = tasks.process_document(doc_id)  # outside a job: it connects to the (dead) configured Redis
    tasks.init_runtime(settings)

    assert result["status"] == DONE
    database = Database(settings.database_uri)
    with database.session() as session:
        assert session.get(Document, doc_id).status == DONE
    database.dispose()
    assert "webhook document.needs_review" in caplog.text and "not queued" in caplog.text


# --- managing the webhook ----------------------------------------------------


def test_the_api_sets_shows_rotates_and_removes_the_clients_webhook(settings, client, make_key):
    key = make_key("submit,read", client="erp")
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/webhook", headers=auth).status_code == 404

    created = client.put("/v1/webhook", json={"url": "https://erp.example.com/docket"}, headers=auth)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["url"] == "https://erp.example.com/docket"
    assert body["events"] == ["document.completed", "document.needs_review", "document.reviewed"]
    assert body["secret"].startswith("whsec_")

    shown = client.get("/v1/webhook", headers=auth).get_json()
    assert shown["secret"] is None and shown["url"] == "https://erp.example.com/docket"
    moved = client.put("/v1/webhook", json={"url": "https://erp.example.com/v2"}, headers=auth)
    assert moved.status_code == 200 and moved.get_json()["secret"] is None  # the secret stays, unshown
    rotated = client.put("/v1/webhook", json={"url": "https://erp.example.com/v2", "rotate_secret": True},
                         headers=auth).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]

    assert client.delete("/v1/webhook", headers=auth).status_code == 204
    database = Database(settings.database_uri)
    with database.session() as session:
        trail = [(e.action, json.dumps(e.data)) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    database.dispose()
    assert [action for action, _ in trail] == ["webhook.set"] * 3 + ["webhook.removed"]
    assert not any(body["secret"] in data or rotated["secret"] in data for _, data in trail)  # never audited
    gone = client.get("/v1/webhook", headers=auth)
    assert gone.status_code == 404 and gone.mimetype == "application/problem+json"
    assert client.delete("/v1/webhook", headers=auth).status_code == 404


@pytest.mark.parametrize("payload, message", [
    ({"url": "ftp://erp.example.com/"}, "http:// or https://"),
    ({"url": "https://u:p@erp.example.com/"}, "no user name or password"),
    ({}, "url"),
    ({"url": "https://erp.example.com/", "events": ["all"]}, "events"),
])
def test_the_api_explains_a_bad_webhook(client, make_key, payload, message):
    auth = {"Authorization": f"Bearer {make_key('submit', client='erp')}"}
    resp = client.put("/v1/webhook", json=payload, headers=auth)
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    assert message in resp.get_json()["detail"]
    assert client.get("/v1/webhook", headers=auth).status_code == 404  # nothing half-written


def test_managing_a_webhook_needs_a_scope_that_earns_events(client, make_key):
    read_only = {"Authorization": f"Bearer {make_key('read', client='dashboard')}"}
    resp = client.put("/v1/webhook", json={"url": "https://dash.example.com/"}, headers=read_only)
    assert resp.status_code == 403 and resp.get_json()["required_scope"] == "submit"
    trainer = {"Authorization": f"Bearer {make_key('train', client='lab')}"}
    resp = client.put("/v1/webhook", json={"url": "https://lab.example.com/"}, headers=trainer)
    assert resp.status_code == 201 and "model.promoted" in resp.get_json()["events"]
    assert client.get("/v1/webhook").status_code == 401


def test_the_api_lists_the_clients_delivery_attempts(settings, make_app, make_key, receiver):
    settings = settings.model_copy(update={"webhook_retry_intervals_s": [0]})
    key = make_key("submit,read", client="erp")
    make_key("submit,read", client="other")
    set_webhook(settings, "erp", receiver.url_for(HOOK))
    set_webhook(settings, "other", receiver.url_for(HOOK))
    receiver.expect_oneshot_request(HOOK).respond_with_data("busy", status=500)
    receiver.expect_request(HOOK).respond_with_data("ok")
    app = make_app(settings)
    submit_scan(app.test_client(), key)
    run_jobs(settings)

    resp = app.test_client().get("/v1/webhook/deliveries", headers={"Authorization": f"Bearer {key}"})
    items = resp.get_json()["items"]
    assert [(i["attempt"], i["outcome"], i["status_code"]) for i in items] == [(2, "delivered", 200),
                                                                               (1, "retrying", 500)]
    assert "secret" not in json.dumps(items)
    spec = app.test_client().get("/openapi.json").get_json()
    assert {"get", "put", "delete"} <= set(spec["paths"]["/v1/webhook"])
    assert "WebhookOut" in spec["components"]["schemas"]


def test_the_cli_prints_the_secret_once_and_rotates_and_removes_it(make_settings, sqlite_url, redis_url, make_key):
    """`docket clients webhook`, run in-process by click's runner against the environment a shell would set."""
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url)
    make_key("submit", client="erp", settings=settings)
    runner = CliRunner()

    def docket(*args: str):
        get_settings.cache_clear()
        try:
            return runner.invoke(cli.main, ["clients", "webhook", *args], env=settings_env(settings))
        finally:
            get_settings.cache_clear()

    made = docket("erp", "--url", "https://erp.example.com/docket")
    assert made.exit_code == 0, made.output
    lines = made.stdout.splitlines()
    assert lines[0] == "client erp: https://erp.example.com/docket"
    secret = lines[-1]
    assert secret.startswith("whsec_") and "shown this once" in made.stderr
    shown = docket("erp")
    assert shown.exit_code == 0 and secret not in shown.output and "https://erp.example.com/docket" in shown.stdout
    rotated = docket("erp", "--rotate-secret")
    assert rotated.exit_code == 0, rotated.output
    new_secret = rotated.stdout.splitlines()[-1]
    assert new_secret.startswith("whsec_") and new_secret != secret
    database = Database(settings.database_uri)
    with database.session() as session:
        assert registration.find_client(session, "erp").webhook_secret == new_secret
    database.dispose()

    removed = docket("erp", "--remove")
    assert removed.exit_code == 0 and "removed" in removed.stdout
    missing = docket("nobody", "--url", "https://x.example.com/")
    assert missing.exit_code != 0 and "No API client named 'nobody'" in missing.stderr
    bad = docket("erp", "--url", "ftp://erp.example.com/")
    assert bad.exit_code != 0 and "http:// or https://" in bad.stderr


def test_the_delivery_job_path_names_the_real_job():
    module, _, name = webhook_events.DELIVER_JOB.rpartition(".")
    assert module == delivery.__name__ and getattr(delivery, name) is delivery.deliver


# --- https ---------------------------------------------------------------------


def make_certificates(folder) -> tuple[str, str, str]:
    """A throwaway CA and a certificate it signed for the name ``localhost`` only: (ca, cert, key) PEM paths."""
    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    now = datetime.now(timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("Docket test CA")).issuer_name(name("Docket test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - timedelta(minutes=5))
          .not_valid_after(now + timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tuple(str(folder / f) for f in ("ca.pem", "cert.pem", "key.pem"))
    Path(paths[0]).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(paths[1]).write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    Path(paths[2]).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def tls_receiver(tmp_path_factory):
    """A real HTTPS server on 127.0.0.1 whose certificate names ``localhost``, and its CA file."""
    ca, cert, key = make_certificates(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    yield server, ca
    server.clear()
    server.stop()


@pytest.mark.parametrize("host, trusted, error", [
    ("localhost", True, None),
    ("localhost", False, "certificate verify failed"),  # the system does not trust the test CA
    ("127.0.0.1", True, "hostname '127.0.0.1' doesn't match 'localhost'"),  # the certificate names localhost
])
def test_https_is_verified_against_the_urls_host_name(sqlite_url, redis_url, make_settings, make_app, make_key,
                                                      tls_receiver, host, trusted, error):
    server, ca = tls_receiver
    server.clear()
    server.expect_request(HOOK, method="POST").respond_with_data("ok")
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url, webhook_retry_intervals_s=[],
                             webhook_ca_file=ca if trusted else None)
    key = make_key("submit,read", client="erp", settings=settings)
    url = f"https://{host}:{server.port}{HOOK}"
    secret = set_webhook(settings, "erp", url)
    submit_scan(make_app(settings).test_client(), key)

    run_jobs(settings)

    [row] = attempts(settings)
    if error is None:
        assert (row.outcome, row.status_code) == ("delivered", 200)
        [(headers, raw, body)] = received(server)
        assert headers["Host"] == f"localhost:{server.port}"
        assert_signed(headers, raw, body, secret, "document.needs_review")
    else:
        assert row.outcome == "failed" and error in row.error
        assert len(server.log) == 0
