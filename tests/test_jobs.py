"""Extraction jobs with real worker processes, the real Redis and PostgreSQL.

To stop a worker at a known point inside a job, the test holds a row lock on
the document: the job blocks on its first write and stays there, in the
middle of its work, until the test kills it or lets go.
"""

import io
import os
import signal
import time

import pytest
from redis import Redis
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import create_engine, select, text

from service.models import AuditEvent, Document
from service.queue import EXTRACTION
from service.tasks import HEARTBEAT_SLACK_S, make_worker
from tests.conftest import start_worker, wait_until
from tests.test_ingest import blank_pdf

TICKET = "From: dana@example.com\nSubject: VPN down\n\nSince this morning the VPN refuses my password."


@pytest.fixture
def pg_settings(make_settings, pg_url, redis_url):
    return make_settings(database_url=pg_url, redis_url=redis_url, job_timeout_s=4, job_retries=2)


def submit(make_app, settings, make_key, kind: str) -> str:
    client = make_app(settings).test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
    if kind == "scan":
        form = {"file": (io.BytesIO(blank_pdf()), "scan.pdf", "application/pdf"), "doc_type": "invoice"}
        resp = client.post("/v1/documents", data=form, headers=headers, content_type="multipart/form-data")
    else:
        resp = client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET}, headers=headers)
    assert resp.status_code == 202, resp.get_json()
    return resp.get_json()["id"]


def document(settings, doc_id: str) -> Document:
    engine = create_engine(settings.database_uri)
    try:
        with engine.connect() as conn:
            return conn.execute(select(Document.__table__).where(Document.id == doc_id)).one()
    finally:
        engine.dispose()


def audit_actions(settings, doc_id: str) -> list[str]:
    engine = create_engine(settings.database_uri)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(AuditEvent.action).where(AuditEvent.document_id == doc_id).order_by(AuditEvent.id)
            )
            return [r[0] for r in rows]
    finally:
        engine.dispose()


def retry_errors(settings, doc_id: str) -> list[str]:
    engine = create_engine(settings.database_uri)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(AuditEvent.data).where(AuditEvent.document_id == doc_id, AuditEvent.action == "extraction.retry")
            )
            return [r[0]["error"] for r in rows]
    finally:
        engine.dispose()


def stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except Exception:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("kind", ["scan", "ticket"])
def test_worker_killed_mid_job_does_not_lose_the_document(request, kind, make_app, make_key, pg_settings):
    settings = pg_settings
    if kind == "ticket":  # needs the engine to finish; on busy cores the retry's extraction can take over 4 s
        settings = settings.model_copy(update={"model_dir": request.getfixturevalue("tiny_model_dir"),
                                               "job_timeout_s": 10})
    doc_id = submit(make_app, settings, make_key, kind)
    conn = Redis.from_url(settings.redis_url)
    started = StartedJobRegistry(EXTRACTION, connection=conn)

    lock_engine = create_engine(settings.database_uri)
    lock = lock_engine.connect()
    tx = lock.begin()
    lock.execute(text("SELECT id FROM documents WHERE id = :id FOR UPDATE"), {"id": doc_id})

    first = start_worker(settings)
    second = None
    try:
        job_ids = wait_until(started.get_job_ids, timeout=90, what="the worker to start the job")
        job_started_at = time.monotonic()
        time.sleep(1.0)  # the job is now blocked on its first write, mid-job
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        tx.rollback()
        lock.close()

        job = Job.fetch(job_ids[0], connection=conn)
        assert job.get_status() == JobStatus.STARTED  # abandoned: nobody will finish it by itself
        assert document(settings, doc_id).status == "queued"

        # Once the job's heartbeat has lapsed, the next worker's maintenance finds it and retries it.
        lapse = settings.job_timeout_s + HEARTBEAT_SLACK_S + 1
        time.sleep(max(0.0, lapse - (time.monotonic() - job_started_at)))
        second = start_worker(settings)
        wait_until(lambda: document(settings, doc_id).status in ("done", "failed"), timeout=120, what="the retry")

        doc = document(settings, doc_id)
        assert doc.status == "done", doc.error
        assert doc.route in ("review", "straight_through")
        assert Job.fetch(job_ids[0], connection=conn).retries_left == settings.job_retries - 1
        assert audit_actions(settings, doc_id)[-1] == "extraction.done"
    finally:
        stop(first)
        if second is not None:
            stop(second)
        lock_engine.dispose()
        conn.close()


def test_a_job_over_its_timeout_is_retried(make_app, make_key, pg_settings):
    """The job timeout fires while the job waits on the database; the retry then completes."""
    settings = pg_settings.model_copy(update={"job_timeout_s": 2})
    doc_id = submit(make_app, settings, make_key, "scan")
    lock_engine = create_engine(settings.database_uri)
    lock = lock_engine.connect()
    tx = lock.begin()
    lock.execute(text("SELECT id FROM documents WHERE id = :id FOR UPDATE"), {"id": doc_id})
    worker = start_worker(settings)
    try:
        conn = Redis.from_url(settings.redis_url)
        started = StartedJobRegistry(EXTRACTION, connection=conn)
        wait_until(started.get_job_ids, timeout=90, what="the worker to start the job")
        time.sleep(settings.job_timeout_s + 2)
        tx.rollback()
        lock.close()
        wait_until(lambda: document(settings, doc_id).status == "done", timeout=60, what="the retry to finish")
        actions = audit_actions(settings, doc_id)
        assert "extraction.retry" in actions and actions[-1] == "extraction.done"
        assert "JobTimeoutException" in retry_errors(settings, doc_id)[0]
        conn.close()
    finally:
        stop(worker)
        lock_engine.dispose()


def test_a_worker_stops_without_waiting_out_its_command_listener(redis_url):
    """rq's listener thread, once it has heard the unsubscribe, waits a minute for a subscription.

    Stopping the worker at that moment (every burst ends with it) used to
    wait the minute out; the worker's listener wakes every second instead.
    """
    conn = Redis.from_url(redis_url)
    worker = make_worker(conn, queues=(EXTRACTION,))
    worker.subscribe()
    time.sleep(0.2)
    worker.pubsub.unsubscribe()  # the listener reads the confirmation and then waits for a subscription
    time.sleep(0.3)
    started = time.monotonic()
    worker.unsubscribe()
    assert time.monotonic() - started < 10
    assert not worker.pubsub_thread.is_alive()
    conn.close()
