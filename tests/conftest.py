"""Shared fixtures: real SQLite and PostgreSQL databases, the real Redis, the tiny real model.

PostgreSQL gets a fresh database per test session (dropped at the end); each
test then starts from empty tables. Each session takes a Redis database number of its own (or the one in
``DOCKET_TEST_REDIS_URL``), flushed around every test.

The service modules are imported inside the fixtures, not at the top: this
file is loaded for every test, and the pure-stage tests must not need the web
stack, the database or the engine to be importable.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from redis import Redis
from sqlalchemy import create_engine, text

from config.settings import Settings

# Property tests check behaviour, not speed: hypothesis's default 200 ms
# deadline per example only measures how busy the machine is (a training run
# in the background was enough to fail one), so it is off.
hypothesis_settings.register_profile("docket", deadline=None)
hypothesis_settings.load_profile("docket")

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT.parent / "shared" / "data" / "invoice2data"
PG_URL = os.environ.get("DOCKET_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DOCKET_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
TABLES = (
    "webhook_deliveries",
    "training_examples",
    "review_tasks",
    "reviews",
    "extraction_attempts",
    "audit_events",
    "documents",
    "api_keys",
    "api_clients",
    "users",
    "model_versions",
    "training_runs",
)


def invoice_pdf(name: str = "AzureInterior.pdf") -> bytes:
    """A real invoice from the shared invoice2data set (read in place, never copied)."""
    return (DATA_DIR / name).read_bytes()


# --- databases ---------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, migrated to head."""
    from service import db  # noqa: PLC0415

    with db.scratch_database(PG_URL, "docket_test") as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The session's PostgreSQL database with every table emptied after the test."""
    yield pg_database
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    from service import db  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'docket.sqlite3'}"
    db.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


# --- Redis -------------------------------------------------------------------


REDIS_LOCK = "docket-test-session"


@pytest.fixture(scope="session")
def redis_session_url() -> Iterator[str]:
    """A Redis database of its own for this test session.

    Sessions running side by side on one machine each take a free database
    number (1-15; 0 is left alone) by setting a lock key in it, so flushing
    between tests never touches another session's jobs.
    """
    if os.environ.get("DOCKET_TEST_REDIS_URL"):
        yield REDIS_URL
        return
    base = REDIS_URL.rsplit("/", 1)[0]
    for number in range(1, 16):
        url = f"{base}/{number}"
        conn = Redis.from_url(url)
        if conn.set(REDIS_LOCK, os.getpid(), nx=True, ex=2 * 3600):
            try:
                conn.flushdb()
                conn.set(REDIS_LOCK, os.getpid(), ex=2 * 3600)
                yield url
            finally:
                conn.flushdb()
                conn.close()
            return
        conn.close()
    pytest.fail("no free Redis database (1-15) for this test session")


@pytest.fixture
def redis_url(redis_session_url: str) -> Iterator[str]:
    """The session's Redis database, emptied before and after the test."""
    conn = Redis.from_url(redis_session_url)
    conn.flushdb()
    conn.set(REDIS_LOCK, os.getpid(), ex=2 * 3600)
    yield redis_session_url
    conn.flushdb()
    conn.set(REDIS_LOCK, os.getpid(), ex=2 * 3600)
    conn.close()


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[Redis]:
    conn = Redis.from_url(redis_url)
    yield conn
    conn.close()


# --- the model ---------------------------------------------------------------


@pytest.fixture
def forget_served_models():
    """Each test starts with no cached engine or registry view in this process (``pytestmark`` in the suites
    that switch models)."""
    from service import tasks  # noqa: PLC0415

    tasks._ENGINES.clear()
    tasks._WATCHES.clear()
    yield
    tasks._ENGINES.clear()
    tasks._WATCHES.clear()


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A tiny real model: random weights, real tokenizer, real ONNX, real constrained decoding.

    Built once per machine into the model cache, keyed by the hash of the
    modules that build and export it, so a changed recipe builds a new one.
    """
    from training import export, tiny  # noqa: PLC0415 - torch, only for the tests that run a model

    recipe = hashlib.sha256(b"".join(Path(m.__file__).read_bytes() for m in (tiny, export))).hexdigest()[:16]
    cache = Path(os.environ.get("DOCKET_MODEL_CACHE_DIR", Path.home() / ".cache" / "docket" / "models"))
    return Path(tiny.build_tiny_model(cache / f"tiny-{recipe}"))


@pytest.fixture(scope="session")
def tiny_base_dir(tiny_model_dir) -> Path:
    """The tiny llama as a Hugging Face folder: the same weights the tiny ONNX model was exported from."""
    from training.tiny import save_tiny_hf

    return save_tiny_hf(tiny_model_dir.with_name(tiny_model_dir.name + "-hf"))


# --- settings, app, client ---------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides) -> Settings:
        values = {
            "var_dir": tmp_path / "var",
            "redis_url": REDIS_URL,
            "model_cache_dir": tmp_path / "no-models",
            "use_cuda": False,
            "job_timeout_s": 60,
            "job_retries": 2,
            "max_upload_bytes": 2 * 1024 * 1024,
            "max_pages": 5,
            "webhook_allow_private": True,  # the test receivers listen on loopback
            "eval_shared": 0,  # no guard on ../shared/data, and so no warm-up job, unless a test asks
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings, database_url: str, redis_url: str) -> Settings:
    """Settings on a real database and Redis, with no model: for everything short of extraction."""
    return make_settings(database_url=database_url, redis_url=redis_url)


@pytest.fixture
def model_settings(settings: Settings, tiny_model_dir: Path) -> Settings:
    """The same, with the tiny real model: for tests that run extraction jobs."""
    return settings.model_copy(update={"model_dir": tiny_model_dir, "max_new_tokens": 200})


@pytest.fixture
def make_app():
    """Build apps for given settings; their database pools and Redis clients are closed afterwards."""
    from service import tasks  # noqa: PLC0415
    from service.app import create_app  # noqa: PLC0415

    apps = []

    def make(settings: Settings):
        app = create_app(settings)
        app.config["TESTING"] = True
        tasks.init_runtime(settings)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["docket.db"].dispose()
        app.extensions["docket.redis"].close()


@pytest.fixture
def app(make_app, settings: Settings):
    return make_app(settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_key(request: pytest.FixtureRequest) -> Callable[..., str]:
    """Create an API key with the given scopes for a client (default: in the ``settings`` database)."""
    from service.auth import create_api_key  # noqa: PLC0415
    from service.db import Database  # noqa: PLC0415

    def make(scopes: str = "submit,read", client: str = "test", settings: Settings | None = None) -> str:
        settings = settings or request.getfixturevalue("settings")
        database = Database(settings.database_uri)
        try:
            with database.session() as session:
                key, _ = create_api_key(session, client, scopes)
        finally:
            database.dispose()
        return key

    return make


@pytest.fixture
def auth(make_key) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('submit,read')}"}


def run_jobs(settings: Settings) -> None:
    """Work the queues empty in this process, with the real rq worker."""
    from service import tasks  # noqa: PLC0415

    connection = Redis.from_url(settings.redis_url)
    try:
        tasks.init_runtime(settings)
        tasks.make_worker(connection).work(burst=True, logging_level="WARNING")
    finally:
        connection.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a subprocess the same settings."""
    env = dict(os.environ)
    env.update(
        DOCKET_VAR_DIR=str(settings.var_dir),
        DOCKET_DATABASE_URL=settings.database_uri,
        DOCKET_REDIS_URL=settings.redis_url,
        DOCKET_MODEL_CACHE_DIR=str(settings.model_cache_dir),
        DOCKET_USE_CUDA="false",
        DOCKET_JOB_TIMEOUT_S=str(settings.job_timeout_s),
        DOCKET_JOB_RETRIES=str(settings.job_retries),
        DOCKET_MAX_PAGES=str(settings.max_pages),
        DOCKET_MAX_UPLOAD_BYTES=str(settings.max_upload_bytes),
        DOCKET_MAX_NEW_TOKENS=str(settings.max_new_tokens),
        DOCKET_LOG_FORMAT=settings.log_format,
        DOCKET_WEBHOOK_ALLOW_PRIVATE=str(settings.webhook_allow_private).lower(),
        DOCKET_WEBHOOK_RETRY_INTERVALS_S=json.dumps(settings.webhook_retry_intervals_s),
        DOCKET_MAINTENANCE_INTERVAL_S=str(settings.maintenance_interval_s),
        DOCKET_REQUEUE_AFTER_S=str(settings.requeue_after_s),
        DOCKET_EVAL_SHARED=str(settings.eval_shared),
    )
    env.pop("DOCKET_MODEL_DIR", None)
    if settings.model_dir:
        env["DOCKET_MODEL_DIR"] = str(settings.model_dir)
    return env


def start_worker(settings: Settings, *args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """A real `docket worker` process (*env*: more variables, for settings `settings_env` does not carry;
    *popen*: e.g. ``stderr=subprocess.PIPE`` to read its log)."""
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker", *args],
        env={**settings_env(settings), **(env or {})},
        cwd=ROOT,
        start_new_session=True,
        **popen,
    )


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
