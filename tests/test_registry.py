"""The model registry: promote, reject, roll back, audit; and serving the active version without a restart."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine, select

from service import registry, tasks
from service.db import Database
from service.exceptions import ArtifactMismatch, NothingToRollBack, RegistryConflict
from service.models import (
    ACTIVE,
    CANDIDATE,
    REJECTED,
    RETIRED,
    AuditEvent,
    Document,
    ExtractionAttempt,
)
from service.tasks import enqueue_extraction, get_engine
from tests.conftest import start_worker, wait_until

TICKET = "From: dana@example.com\nSubject: VPN down\n\nSince this morning the VPN refuses my password."


pytestmark = pytest.mark.usefixtures("forget_served_models")


@pytest.fixture
def database(settings):
    database = Database(settings.database_uri)
    yield database
    database.dispose()


def fake_artifact(folder: Path, content: bytes) -> Path:
    """A folder shaped like a model artifact, for bookkeeping tests that never load it."""
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(content)
    (folder / "docket-model.json").write_text("{}")
    return folder


def version_copy(tiny_model_dir: Path, dest: Path, version: str) -> Path:
    """A second servable model: the tiny model's files in another folder, under another version id."""
    shutil.copytree(tiny_model_dir, dest)
    meta = json.loads((dest / "docket-model.json").read_text())
    meta["version"] = version
    (dest / "docket-model.json").write_text(json.dumps(meta))
    return dest


def actions(session) -> list[tuple[str, str]]:
    return [(e.action, e.data.get("version")) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.action.startswith("model.")]


def test_promote_and_roll_back_walk_the_history(database, tmp_path):
    with database.session() as session:
        for name in ("a", "b", "c"):
            registry.register(session, version=name, path=fake_artifact(tmp_path / name, name.encode()), actor="cli")
        session.commit()
        assert registry.active_version(session) is None
        assert [v.status for v in registry.list_versions(session)] == [CANDIDATE] * 3

        registry.promote(session, "a", "cli")
        registry.promote(session, "b", "cli")
        registry.promote(session, "c", "cli")
        assert {v.version: v.status for v in registry.list_versions(session)} == {"a": RETIRED, "b": RETIRED, "c": ACTIVE}
        assert registry.get_version(session, "c").previous == "b"
        assert registry.active_ref(session) == registry.ModelRef("c", (tmp_path / "c").resolve())

        assert registry.rollback(session, "cli").version == "b"
        assert registry.rollback(session, "cli").version == "a"
        with pytest.raises(NothingToRollBack):
            registry.rollback(session, "cli")
        assert {v.version: v.status for v in registry.list_versions(session)} == {"a": ACTIVE, "b": RETIRED, "c": RETIRED}
        with pytest.raises(RegistryConflict):
            registry.promote(session, "a", "cli")

        assert actions(session) == [
            ("model.registered", "a"), ("model.registered", "b"), ("model.registered", "c"),
            ("model.promoted", "a"), ("model.promoted", "b"), ("model.promoted", "c"),
            ("model.rolled_back", "b"), ("model.rolled_back", "a"),
        ]


def test_only_one_version_is_ever_active(database, tmp_path):
    with database.session() as session:
        for name in ("a", "b"):
            registry.register(session, version=name, path=fake_artifact(tmp_path / name, name.encode()), actor="cli")
        session.commit()
        registry.promote(session, "a", "cli")
        registry.promote(session, "b", "cli")
        registry.promote(session, "a", "cli")
        assert [v.version for v in registry.list_versions(session) if v.active] == ["a"]


def test_a_changed_or_missing_artifact_is_never_promoted(database, tmp_path):
    with database.session() as session:
        folder = fake_artifact(tmp_path / "a", b"weights")
        entry = registry.register(session, version="a", path=folder, actor="cli")
        session.commit()
        assert entry.sha256 == registry.artifact_sha256(folder)
        (folder / "model.onnx").write_bytes(b"tampered")
        with pytest.raises(ArtifactMismatch):
            registry.promote(session, "a", "cli")
        shutil.rmtree(folder)
        with pytest.raises(ArtifactMismatch):
            registry.promote(session, "a", "cli")
        assert registry.active_version(session) is None
        with pytest.raises(ArtifactMismatch):
            registry.register(session, version="b", path=tmp_path / "nowhere", actor="cli")


def test_reject_keeps_the_comparison(database, tmp_path):
    with database.session() as session:
        registry.register(session, version="a", path=fake_artifact(tmp_path / "a", b"a"), actor="cli")
        session.commit()
        registry.reject(session, "a", "worker", {"decision": "reject", "reasons": ["total drops 5.00%"]})
        entry = registry.get_version(session, "a")
        assert entry.status == REJECTED
        assert entry.gate["reasons"] == ["total drops 5.00%"]


def test_the_watch_asks_at_most_once_per_interval():
    answers = iter([None, registry.ModelRef("v2", Path("/m/v2"))])
    calls, now = [], [0.0]

    def lookup():
        calls.append(now[0])
        return next(answers)

    watch = registry.ActiveModelWatch(lookup, interval=2.0, clock=lambda: now[0])
    assert watch.current() is None
    now[0] = 1.9
    assert watch.current() is None
    now[0] = 2.0
    assert watch.current() == registry.ModelRef("v2", Path("/m/v2"))
    assert calls == [0.0, 2.0]


def test_get_engine_switches_to_the_promoted_version_in_process(model_settings, tiny_model_dir, database, tmp_path):
    before = get_engine(model_settings, database)  # registry empty: the settings' model
    assert before.model_dir == tiny_model_dir
    held = before  # a job that started on it

    v2 = version_copy(tiny_model_dir, tmp_path / "v2", "v2")
    with database.session() as session:
        registry.register(session, version="v2", path=v2, actor="cli")
        session.commit()
        registry.promote(session, "v2", "cli")
    watch = tasks.active_model_watch(model_settings, database)
    watch.interval = 0.0
    after = get_engine(model_settings, database)
    assert after.model_dir == v2.resolve() and after.model_version == "v2"
    assert held.model_version == before.model_version and held.session is not None  # still usable by its job
    assert get_engine(model_settings, database) is after


# --- a real worker process ----------------------------------------------------


def submit_ticket(settings, database: Database) -> str:
    with database.session() as session:
        doc = Document(doc_type="ticket", media_type="text/plain", content_sha256="0" * 64,
                       size_bytes=len(TICKET), text=TICKET)
        session.add(doc)
        session.commit()
        doc_id = doc.id
    conn = Redis.from_url(settings.redis_url)
    try:
        enqueue_extraction(conn, doc_id, settings)
    finally:
        conn.close()
    return doc_id


def served_by(settings, doc_id: str) -> str | None:
    engine = create_engine(settings.database_uri)
    try:
        with engine.connect() as conn:
            return conn.execute(select(ExtractionAttempt.model_version).where(
                ExtractionAttempt.document_id == doc_id, ExtractionAttempt.engine == "model")).scalar()
    finally:
        engine.dispose()


def test_a_running_worker_serves_the_promoted_version_within_10_seconds(model_settings, tiny_model_dir, database,
                                                                        tmp_path):
    settings = model_settings
    v2 = version_copy(tiny_model_dir, tmp_path / "v2", "v2")
    with database.session() as session:
        registry.register(session, version="v2", path=v2, actor="cli")
        session.commit()
    worker = start_worker(settings, "--queue", "extraction")
    try:
        first = submit_ticket(settings, database)
        original = wait_until(lambda: served_by(settings, first), timeout=120, what="the first extraction")
        assert original != "v2"

        with database.session() as session:
            registry.promote(session, "v2", "cli")
        promoted_at = time.monotonic()
        seen: list[str] = []
        while time.monotonic() - promoted_at < 10.0:
            doc_id = submit_ticket(settings, database)
            seen.append(wait_until(lambda d=doc_id: served_by(settings, d), timeout=30, what="an extraction"))
            if seen[-1] == "v2":
                break
        assert seen and seen[-1] == "v2", f"still {seen} 10 s after promotion"
        assert time.monotonic() - promoted_at < 10.0 + 5.0  # the last job may have started just before the deadline
        doc_id = submit_ticket(settings, database)
        assert wait_until(lambda: served_by(settings, doc_id), timeout=30, what="an extraction") == "v2"
        assert worker.poll() is None  # the same process, never restarted
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
