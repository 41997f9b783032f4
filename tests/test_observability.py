"""Metrics and logs, through the real app, the tiny real model, real rq workers and the real Redis.

``/metrics`` is scraped through the test client after real extractions; the
request id is followed from an API request into the log of a real ``docket
worker`` process writing JSON.
"""

import json
import logging
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import registry, tasks
from service.db import Database
from service.logs import JsonFormatter, TextFormatter, configure_logging, log_context
from tests.conftest import run_jobs, start_worker
from tests.test_registry import fake_artifact

TICKET = (
    "From: dana.lee@example.com\nSubject: VPN refuses my password\n\n"
    "Since this morning the VPN client says my password is wrong. Please help urgently."
)


@pytest.fixture(autouse=True)
def fresh_model_watch():
    """No process-wide view of the active model left over from another test's database."""
    tasks._WATCHES.clear()
    yield
    tasks._WATCHES.clear()


def scrape(client, headers) -> dict[str, dict[tuple, float]]:
    """/metrics as {sample name: {sorted label items: value}}."""
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    """The value of the sample whose labels include *labels* (0 when it does not exist yet)."""
    matches = [v for key, v in samples.get(name, {}).items() if set(labels.items()) <= set(key)]
    assert len(matches) <= 1, (name, labels, matches)
    return matches[0] if matches else 0.0


def test_metrics_after_a_real_extraction(model_settings, make_app, make_key):
    app = make_app(model_settings)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=model_settings)}"}
    before = scrape(client, headers)

    posted = client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET}, headers=headers)
    assert posted.status_code == 202
    queued = scrape(client, headers)
    assert value(queued, "docket_queue_jobs", queue="extraction", state="queued") == 1
    assert value(queued, "docket_queue_jobs", queue="training", state="failed") == 0
    assert value(queued, "docket_queue_workers", queue="extraction") == 0

    run_jobs(model_settings)
    doc = client.get(posted.headers["Location"], headers=headers).get_json()
    assert doc["status"] == "done"
    assert client.get("/no/such/page", headers=headers).status_code == 404
    after = scrape(client, headers)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    # Requests: by route template, never the raw path (which holds the document id).
    assert grew("docket_http_request_duration_seconds_count", route="/v1/documents", method="POST", status="2xx") == 1
    assert grew("docket_http_request_duration_seconds_count", route="/v1/documents/<document_id>", method="GET",
                status="2xx") == 1
    assert grew("docket_http_request_duration_seconds_count", route="<unmatched>", method="GET", status="4xx") == 1
    assert not any(doc["id"] in dict(key)["route"] for key in after["docket_http_request_duration_seconds_count"])
    assert grew("docket_http_request_duration_seconds_sum", route="/v1/documents", method="POST", status="2xx") > 0
    # Every stage once for this ticket, each with a positive duration.
    for stage in ("ingest", "prefill", "decode", "validate"):
        assert grew("docket_extraction_stage_duration_seconds_count", stage=stage, doc_type="ticket") == 1, stage
        assert grew("docket_extraction_stage_duration_seconds_sum", stage=stage, doc_type="ticket") > 0, stage
    assert grew("docket_documents_routed_total", doc_type="ticket", route=doc["route"], escalated="false") == 1
    # Read at scrape time: the queue is empty again, and the model is the configured tiny one.
    assert value(after, "docket_queue_jobs", queue="extraction", state="queued") == 0
    assert value(after, "docket_queue_jobs", queue="extraction", state="failed") == 0
    assert value(after, "docket_model_active_info", version=doc["result"]["model_version"], source="configured") == 1


def test_metrics_without_a_model_or_redis_still_answer(settings, make_app, make_key):
    """No model built and Redis gone: the scrape still answers, without those families."""
    app = make_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    client = app.test_client()
    samples = scrape(client, {"Authorization": f"Bearer {make_key(settings=settings)}"})
    assert "docket_model_active_info" not in samples and "docket_queue_jobs" not in samples
    assert "docket_http_request_duration_seconds_count" in samples


def test_metrics_name_the_promoted_model_version(settings, make_app, make_key, tmp_path):
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            registry.register(session, version="m-7", path=fake_artifact(tmp_path / "m-7", b"m"), actor="cli")
            registry.promote(session, "m-7", "cli")
    finally:
        database.dispose()
    client = make_app(settings).test_client()
    samples = scrape(client, {"Authorization": f"Bearer {make_key(settings=settings)}"})
    assert samples["docket_model_active_info"] == {(("source", "registry"), ("version", "m-7")): 1.0}


def test_request_id_is_taken_when_sane_and_made_otherwise(client, auth):
    given = client.get("/v1/schemas", headers={**auth, "X-Request-Id": "erp-42:batch/7"})
    assert given.headers["X-Request-Id"] == "erp-42:batch/7"
    for bad in ("x" * 129, "two words", "tab\there", "<script>", ""):
        made = client.get("/v1/schemas", headers={**auth, "X-Request-Id": bad}).headers["X-Request-Id"]
        assert made != bad and len(made) == 32 and int(made, 16) >= 0
    first, second = (client.get("/healthz").headers["X-Request-Id"] for _ in range(2))
    assert first != second  # one per request, not one per process
    problem = client.get("/v1/documents/nope", headers={**auth, "X-Request-Id": "trace-1"})
    assert problem.status_code == 404 and problem.get_json()["request_id"] == "trace-1"
    assert problem.headers["X-Request-Id"] == "trace-1"


def test_request_id_follows_the_document_into_the_worker_log(model_settings, make_app, make_key):
    """The id a client sends is on every line the worker logs for that document, in JSON."""
    settings = model_settings.model_copy(update={"log_format": "json"})
    client = make_app(settings).test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}", "X-Request-Id": "ticket-7f3a"}
    posted = client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET}, headers=headers)
    assert posted.status_code == 202 and posted.headers["X-Request-Id"] == "ticket-7f3a"
    other = client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET + " Thanks."},
                        headers={**headers, "X-Request-Id": "ticket-other"})
    doc_id, other_id = posted.get_json()["id"], other.get_json()["id"]

    worker = start_worker(settings, "--burst", stderr=subprocess.PIPE, text=True)
    _, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert {"ts", "level", "logger", "message"} <= set(lines[0])
    for document, rid in ((doc_id, "ticket-7f3a"), (other_id, "ticket-other")):
        mine = [line for line in lines if line.get("document_id") == document]
        assert {line.get("request_id") for line in mine} == {rid}
        assert len({line["job_id"] for line in mine}) == 1
        messages = [line["message"] for line in mine]
        assert f"document {document}: extraction attempt 1" in messages
        assert any(m.startswith(f"document {document} done: ") for m in messages)
        assert any("Job OK" in m for m in messages)  # rq's own line, inside the job's context
    assert any(line["message"].startswith("model tiny-") for line in lines)
    # Between jobs nothing carries an id.
    assert all("request_id" not in line for line in lines if "document_id" not in line)


def test_json_and_text_formatters():
    record = logging.LogRecord("service.x", logging.WARNING, __file__, 1, "hello %s", ("\x1b[32mworld\x1b[39;49;00m",),
                               None)
    record.route = "/v1/documents"
    with log_context(request_id="r-1", document_id="d-1"):
        entry = json.loads(JsonFormatter().format(record))
        text = TextFormatter().format(record)
    assert entry["message"] == "hello world" and entry["level"] == "WARNING" and entry["logger"] == "service.x"
    assert entry["request_id"] == "r-1" and entry["document_id"] == "d-1" and "job_id" not in entry
    assert entry["route"] == "/v1/documents" and entry["ts"].endswith("+00:00")
    assert text.endswith("[request_id=r-1 document_id=d-1]")
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exc"]
    assert "request_id" not in JsonFormatter().format(record)  # outside the context again
    with pytest.raises(ValueError, match="text' or 'json"):
        configure_logging("xml")
