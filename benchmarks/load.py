"""Load test on loopback: gunicorn + rq workers on PostgreSQL and Redis, many clients submitting tickets.

It starts everything itself — a fresh PostgreSQL database (dropped at the
end), a Redis database number of its own, ``gunicorn -c
python:service.gunicorn_conf`` with several workers and ``docket worker``
processes, all sharing one ``PROMETHEUS_MULTIPROC_DIR`` — creates an API
key, and runs concurrent clients. Each client submits its share of the
tickets (texts from ``../shared/data/bitext``, read in place, or synthetic),
each with an ``Idempotency-Key`` so a retried submission never makes a second
document, then polls them to completion, oldest first. The report: throughput,
p50/p95 submit latency, per-document completion time (the server's
``created_at`` to ``completed_at``) and the wall time until the last one was
done; errors, lost documents (accepted but never finished) and the database's
document count against the submissions; and what ``/metrics`` counted, which
checks that multiprocess mode adds every process up.

    python -m benchmarks.load                       # 1,000 tickets, 50 clients, the default model
    python -m benchmarks.load --model DIR --tickets 200 --clients 20 --max-new-tokens 64 --out load.json

Only loopback addresses are used. Every process's log is kept in the work
folder (``--workdir``, default a temporary one, removed afterwards).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Worker
from sqlalchemy import func, select

from config.settings import Settings
from service import db
from service.auth import create_api_key
from service.extract.artifacts import default_model_dir
from service.extract.engine import model_version_of
from service.models import Document

ROOT = Path(__file__).resolve().parent.parent
BITEXT = ROOT.parent / "shared" / "data" / "bitext" / "normalized.jsonl"
HOST = "127.0.0.1"
# The key the test fixtures claim a Redis database with: taking the same one keeps test sessions off ours.
REDIS_LOCK = "docket-test-session"
RETRIES = 3  # attempts per HTTP call before it counts as lost


@dataclass
class LoadConfig:
    """One load run. The defaults are the benchmark: 1,000 tickets from 50 clients, 4 web and 2 rq workers."""

    model_dir: Path
    tickets: int = 1000
    clients: int = 50
    web_workers: int = 4
    rq_workers: int = 2
    max_new_tokens: int | None = None  # None: the service's default
    intra_op_threads: int = 0  # per rq worker; 0: cores / rq workers
    pg_admin_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    redis_url: str | None = None  # a database of its own; None: claim a free one on 127.0.0.1:6379
    poll_interval_s: float = 0.5
    timeout_s: float = 1800.0
    workdir: Path | None = None  # logs and var/; None: a temporary folder, removed afterwards


@dataclass
class Ticket:
    """What one client saw of one ticket."""

    text: str
    idempotency_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    document_id: str | None = None
    submit_ms: float | None = None
    status: str | None = None
    created_at: str | None = None
    completed_at: str | None = None
    seen_done: float | None = None  # time.monotonic() when the poll saw it finished


# --- tickets -----------------------------------------------------------------


def ticket_texts(count: int, source: Path = BITEXT, seed: int = 0) -> list[str]:
    """*count* ticket texts: the bitext customer-support messages if the shared data is there, else synthetic."""
    texts: list[str] = []
    if source.exists():
        with source.open() as fh:
            for line in fh:
                texts.append(json.loads(line)["text"])
                if len(texts) >= count:
                    break
    if not texts:
        rng = random.Random(seed)
        topics = ["my invoice is wrong", "the VPN refuses my password", "order 11354 never arrived",
                  "please cancel my subscription", "the app crashes at login"]
        texts = [f"Hello, {rng.choice(topics)} (case {i}). Regards, customer {rng.randint(100, 999)}"
                 for i in range(count)]
    return [texts[i % len(texts)] for i in range(count)]


# --- the services ------------------------------------------------------------


@contextmanager
def redis_database(url: str | None) -> Iterator[str]:
    """*url*, or a free database number (1-15) on the local Redis, claimed with the test fixtures' lock key."""
    if url:
        yield url
        return
    for number in range(1, 16):
        candidate = f"redis://{HOST}:6379/{number}"
        conn = Redis.from_url(candidate)
        if conn.set(REDIS_LOCK, f"load-{os.getpid()}", nx=True, ex=2 * 3600):
            try:
                conn.flushdb()
                conn.set(REDIS_LOCK, f"load-{os.getpid()}", ex=2 * 3600)
                yield candidate
            finally:
                conn.flushdb()
                conn.close()
            return
        conn.close()
    raise RuntimeError("no free Redis database (1-15) on 127.0.0.1:6379")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def service_env(config: LoadConfig, database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    threads = config.intra_op_threads or max(1, (os.cpu_count() or 1) // config.rq_workers)
    env.update(
        DOCKET_DATABASE_URL=database_url,
        DOCKET_REDIS_URL=redis_url,
        DOCKET_VAR_DIR=str(workdir / "var"),
        DOCKET_MODEL_DIR=str(config.model_dir),
        DOCKET_USE_CUDA="false",
        DOCKET_INTRA_OP_THREADS=str(threads),
        DOCKET_LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
    )
    if config.max_new_tokens:
        env["DOCKET_MAX_NEW_TOKENS"] = str(config.max_new_tokens)
    return env


def start(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("w") as log:
        return subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM (gunicorn and rq shut down warm), then SIGKILL after 30 s."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def running_services(config: LoadConfig, database_url: str, redis_url: str, workdir: Path) -> Iterator[str]:
    """gunicorn and the rq workers, up and listening; yields the API's base URL."""
    (workdir / "metrics").mkdir(parents=True, exist_ok=True)
    env = service_env(config, database_url, redis_url, workdir)
    port = free_port()
    procs = [start([sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn_conf", "-w", str(config.web_workers),
                    "-b", f"{HOST}:{port}", "--no-control-socket", "wsgi:app"], env, workdir / "gunicorn.log")]
    procs += [start([sys.executable, "-m", "service.cli", "worker", "-q", "extraction"], env, workdir / f"worker-{i}.log")
              for i in range(config.rq_workers)]
    try:
        connection = Redis.from_url(redis_url)
        deadline = time.monotonic() + 300
        while not (healthy(port) and len(Worker.all(connection=connection)) >= config.rq_workers):
            dead = [p.args for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"services did not come up (exited: {dead}); logs in {workdir}")
            time.sleep(0.5)
        connection.close()
        yield f"http://{HOST}:{port}"
    finally:
        stop(procs)


def healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


# --- the clients -------------------------------------------------------------


class Client:
    """One HTTP/1.1 connection to the API, reopened when the server closes it."""

    def __init__(self, base_url: str, key: str, errors: list[str]) -> None:
        self.host, _, port = base_url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.headers = {"Authorization": f"Bearer {key}"}
        self.errors = errors
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict | None:
        """The JSON answer of a 2xx, retried on connection errors and 5xx; every failed attempt is an error."""
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {**self.headers, **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        for _ in range(RETRIES):
            try:
                self.conn.request(method, path, body=payload, headers=all_headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if 200 <= resp.status < 300:
                    return json.loads(data)
                self.errors.append(f"{method} {path}: HTTP {resp.status} {data[:200]!r}")
                if resp.status < 500:
                    return None
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return None

    def close(self) -> None:
        self.conn.close()


def run_client(base_url: str, key: str, tickets: list[Ticket], errors: list[str], config: LoadConfig,
               deadline: float) -> None:
    """Submit every ticket, then poll them to completion, oldest first."""
    client = Client(base_url, key, errors)
    try:
        for ticket in tickets:
            started = time.perf_counter()
            answer = client.call("POST", "/v1/documents", {"doc_type": "ticket", "text": ticket.text},
                                 {"Idempotency-Key": ticket.idempotency_key})
            ticket.submit_ms = (time.perf_counter() - started) * 1000
            if answer is not None:
                ticket.document_id, ticket.status = answer["id"], answer["status"]
        pending = [t for t in tickets if t.document_id]
        while pending and time.monotonic() < deadline:
            answer = client.call("GET", f"/v1/documents/{pending[0].document_id}")
            if answer is not None and answer["status"] in ("done", "failed"):
                ticket = pending.pop(0)
                ticket.status, ticket.seen_done = answer["status"], time.monotonic()
                ticket.created_at, ticket.completed_at = answer["created_at"], answer["completed_at"]
                continue  # the next one may be done already
            time.sleep(config.poll_interval_s)
    finally:
        client.close()


# --- the report --------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def spread(values: list[float], digits: int = 1) -> dict[str, float | None]:
    def r(v):
        return None if v is None else round(v, digits)
    return {"p50": r(percentile(values, 50)), "p95": r(percentile(values, 95)), "max": r(max(values, default=None))}


def scrape_counts(base_url: str, key: str) -> dict[str, float]:
    """What /metrics counted over all processes: submissions (gunicorn workers) and decodes (rq workers)."""
    client = Client(base_url, key, [])
    try:
        client.conn.request("GET", "/metrics", headers=client.headers)
        body = client.conn.getresponse().read().decode()
    finally:
        client.close()
    counts = {"submits": 0.0, "decodes": 0.0, "routed": 0.0}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == "docket_http_request_duration_seconds_count" and s.labels.get("route") == "/v1/documents" \
                    and s.labels.get("method") == "POST":
                counts["submits"] += s.value
            elif s.name == "docket_extraction_stage_duration_seconds_count" and s.labels.get("stage") == "decode":
                counts["decodes"] += s.value
            elif s.name == "docket_documents_routed_total":
                counts["routed"] += s.value
    return counts


def server_seconds(ticket: Ticket) -> float | None:
    if not (ticket.created_at and ticket.completed_at):
        return None
    return (datetime.fromisoformat(ticket.completed_at) - datetime.fromisoformat(ticket.created_at)).total_seconds()


def run_load(config: LoadConfig) -> dict:
    """Start the services, run the clients, stop everything; the report as a dict."""
    texts = ticket_texts(config.tickets)
    tickets = [Ticket(t) for t in texts]
    shares = [tickets[i :: config.clients] for i in range(config.clients)]
    errors: list[str] = []
    with ExitStack() as stack:
        workdir = config.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="docket-load-")))
        database_url = stack.enter_context(db.scratch_database(config.pg_admin_url, "docket_load"))
        redis_url = stack.enter_context(redis_database(config.redis_url))
        database = db.Database(database_url)
        stack.callback(database.dispose)
        with database.session() as session:
            key, _ = create_api_key(session, "load", "submit,read")
        base_url = stack.enter_context(running_services(config, database_url, redis_url, workdir))

        started = time.monotonic()
        deadline = started + config.timeout_s
        with ThreadPoolExecutor(config.clients, thread_name_prefix="client") as pool:
            for future in [pool.submit(run_client, base_url, key, share, errors, config, deadline) for share in shares]:
                future.result()
        finished = max((t.seen_done for t in tickets if t.seen_done), default=time.monotonic())
        counted = scrape_counts(base_url, key)
        with database.session() as session:
            db_documents = session.scalar(select(func.count()).select_from(Document))

    submitted = [t for t in tickets if t.document_id]
    done = [t for t in submitted if t.status == "done"]
    failed = [t for t in submitted if t.status == "failed"]
    wall_s = finished - started
    return {
        "tickets": config.tickets,
        "clients": config.clients,
        "web_workers": config.web_workers,
        "rq_workers": config.rq_workers,
        "model": model_version_of(config.model_dir),
        "max_new_tokens": config.max_new_tokens or Settings().max_new_tokens,
        "cpu_cores": os.cpu_count(),
        "submitted": len(submitted),
        "done": len(done),
        "failed_documents": len(failed),
        "http_errors": len(errors),
        "errors": len(errors) + len(failed) + (config.tickets - len(submitted)),
        "lost": len(submitted) - len(done) - len(failed),
        "db_documents": db_documents,
        "wall_s": round(wall_s, 2),
        "throughput_docs_per_s": round(len(done) / wall_s, 3) if wall_s > 0 else None,
        "submit_ms": spread([t.submit_ms for t in tickets if t.submit_ms is not None]),
        "completion_s": spread([s for s in map(server_seconds, done) if s is not None], 2),
        "metrics_counted": counted,
        "first_errors": errors[:10],
    }


def print_table(report: dict) -> None:
    rows = [
        ("tickets / clients", f"{report['tickets']} / {report['clients']}"),
        ("gunicorn workers / rq workers", f"{report['web_workers']} / {report['rq_workers']} on {report['cpu_cores']} cores"),
        ("model, max new tokens", f"{report['model']}, {report['max_new_tokens']}"),
        ("submitted / done / failed", f"{report['submitted']} / {report['done']} / {report['failed_documents']}"),
        ("errors / lost", f"{report['errors']} / {report['lost']}"),
        ("documents in the database", str(report["db_documents"])),
        ("wall time (first submit to last done)", f"{report['wall_s']} s"),
        ("throughput", f"{report['throughput_docs_per_s']} documents/s"),
        ("submit latency p50 / p95 / max", "{p50} / {p95} / {max} ms".format(**report["submit_ms"])),
        ("completion time p50 / p95 / max", "{p50} / {p95} / {max} s".format(**report["completion_s"])),
        ("/metrics: submits / decodes / routed", "{submits:.0f} / {decodes:.0f} / {routed:.0f}".format(**report["metrics_counted"])),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the default model from `make model`)")
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--rq-workers", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, help="decoding cap per document (default: the service's)")
    parser.add_argument("--pg-admin-url", default=LoadConfig.pg_admin_url, help="creates and drops the run's database")
    parser.add_argument("--redis-url", help="a Redis database for the run alone (default: a free one on 127.0.0.1)")
    parser.add_argument("--timeout", type=float, default=LoadConfig.timeout_s, help="seconds before pending counts as lost")
    parser.add_argument("--workdir", type=Path, help="keep logs and var/ here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="write the JSON report here too")
    args = parser.parse_args(argv)
    model_dir = args.model or default_model_dir(Settings())
    if model_version_of(model_dir) is None:
        parser.error(f"no model at {model_dir}: build the default one with `make model` or pass --model DIR")
    config = LoadConfig(model_dir=model_dir, tickets=args.tickets, clients=args.clients, web_workers=args.web_workers,
                        rq_workers=args.rq_workers, max_new_tokens=args.max_new_tokens, pg_admin_url=args.pg_admin_url,
                        redis_url=args.redis_url, timeout_s=args.timeout, workdir=args.workdir)
    if config.workdir:
        config.workdir.mkdir(parents=True, exist_ok=True)
    report = run_load(config)
    print(json.dumps(report, indent=2))
    print_table(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    clean = report["errors"] == 0 and report["lost"] == 0 and report["db_documents"] == report["submitted"] == config.tickets
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
