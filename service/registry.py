"""The model registry: which model versions exist, which one is served, and every change to that.

A version is a model folder (``model.onnx``, ``tokenizer.json``,
``docket-model.json``) with its lineage and metrics in ``model_versions``.
Exactly one version is active at a time, or none: then the default model
(``service.extract.artifacts``) is served. Promotion retires the active
version and remembers it as the new one's ``previous``; a rollback retires
the active version and makes its ``previous`` active again, so repeated
rollbacks walk back through the promotion history. Every change is an
:class:`~service.models.AuditEvent`.

Workers and the API find the active version through
:class:`ActiveModelWatch`, which asks the database at most every
:data:`ACTIVE_CHECK_S` seconds: a promotion reaches every process within that
interval plus the time to load the new model, without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.exceptions import (
    ArtifactMismatch,
    NotFound,
    NothingToRollBack,
    RegistryConflict,
)
from service.models import (
    ACTIVE,
    CANDIDATE,
    REJECTED,
    RETIRED,
    AuditEvent,
    ModelVersion,
    utcnow,
)
from service.webhooks import events as webhook_events

log = logging.getLogger(__name__)

ACTIVE_CHECK_S = 2.0  # how stale a process's idea of the active version may be


@dataclass(frozen=True)
class ModelRef:
    """What a process needs to serve a version: its id and its folder."""

    version: str
    path: Path


def artifact_sha256(folder: Path) -> str:
    """SHA-256 over a model folder's files (names and contents, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


# --- reading -----------------------------------------------------------------


def list_versions(session: Session) -> list[ModelVersion]:
    """Every registered version, newest first."""
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())))


def get_version(session: Session, version: str) -> ModelVersion:
    found = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    if found is None:
        raise NotFound(f"No model version {version!r} in the registry.")
    return found


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.status == ACTIVE))


def active_ref(session: Session) -> ModelRef | None:
    row = session.execute(select(ModelVersion.version, ModelVersion.path).where(ModelVersion.status == ACTIVE)).first()
    return ModelRef(row.version, Path(row.path)) if row else None


# --- changing ----------------------------------------------------------------


def register(
    session: Session,
    *,
    version: str,
    path: Path,
    actor: str,
    parent: str | None = None,
    base_model: str = "",
    data_hash: str = "",
    metrics: dict[str, Any] | None = None,
    doc_types: list[str] | None = None,
    training_run_id: int | None = None,
) -> ModelVersion:
    """Add a candidate version for the model folder at *path*, hashing its files. Flushes, does not commit."""
    path = Path(path)
    if not (path / "model.onnx").exists():
        raise ArtifactMismatch(f"No model.onnx in {path}.")
    if session.scalar(select(ModelVersion.id).where(ModelVersion.version == version)) is not None:
        raise RegistryConflict(f"Model version {version!r} is already registered.")
    entry = ModelVersion(
        version=version,
        path=str(path.resolve()),
        sha256=artifact_sha256(path),
        parent=parent,
        base_model=base_model,
        data_hash=data_hash,
        metrics=metrics or {},
        doc_types=doc_types or [],
        training_run_id=training_run_id,
        status=CANDIDATE,
    )
    session.add(entry)
    session.flush()
    _audit(session, actor, "model.registered", entry, parent=parent, sha256=entry.sha256, path=entry.path)
    return entry


def promote(session: Session, version: str, actor: str, reason: str = "manual",
            gate: dict[str, Any] | None = None) -> ModelVersion:
    """Make *version* the served model; the active one is retired. Commits.

    The artifact is re-hashed first: a folder that changed or vanished since
    it was registered is never served.
    """
    entry = get_version(session, version)
    if entry.status == ACTIVE:
        raise RegistryConflict(f"Model version {version!r} is already active.")
    check_artifact(entry)
    current = _lock_active(session)
    for old in current:
        old.status = RETIRED
    entry.previous = current[0].version if current else None
    entry.status = ACTIVE
    entry.activated_at = utcnow()
    if gate is not None:
        entry.gate = gate
    _audit(session, actor, "model.promoted", entry, reason=reason, previous=entry.previous)
    webhook_events.model_promoted(session, entry, reason)
    session.commit()
    log.info("model %s promoted by %s (%s); was %s", version, actor, reason, entry.previous)
    return entry


def reject(session: Session, version: str, actor: str, gate: dict[str, Any]) -> ModelVersion:
    """Keep a candidate that failed the gate, with the comparison that failed it. Commits."""
    entry = get_version(session, version)
    if entry.status == ACTIVE:
        raise RegistryConflict(f"Model version {version!r} is active; roll back instead of rejecting it.")
    entry.status = REJECTED
    entry.gate = gate
    _audit(session, actor, "model.rejected", entry, reasons=gate.get("reasons", []))
    session.commit()
    return entry


def rollback(session: Session, actor: str) -> ModelVersion:
    """Retire the active version and serve the one it replaced. Commits; returns the version now active."""
    current = _lock_active(session)
    if not current:
        raise NothingToRollBack("No model version is active: the default model is already served.")
    active = current[0]
    if not active.previous:
        raise NothingToRollBack(f"Model version {active.version!r} replaced no earlier registered version.")
    target = get_version(session, active.previous)
    check_artifact(target)
    active.status = RETIRED
    target.status = ACTIVE
    target.activated_at = utcnow()
    _audit(session, actor, "model.rolled_back", target, rolled_back=active.version)
    session.commit()
    log.info("model rolled back by %s from %s to %s", actor, active.version, target.version)
    return target


def check_artifact(entry: ModelVersion) -> None:
    path = Path(entry.path)
    if not (path / "model.onnx").exists():
        raise ArtifactMismatch(f"Model version {entry.version!r}: no model at {path}.")
    if entry.sha256 and artifact_sha256(path) != entry.sha256:
        raise ArtifactMismatch(f"Model version {entry.version!r}: the files in {path} changed since registration.")


def _lock_active(session: Session) -> list[ModelVersion]:
    """The active version(s), locked for update: two promotions at once never leave two active."""
    return list(session.scalars(select(ModelVersion).where(ModelVersion.status == ACTIVE).with_for_update()))


def _audit(session: Session, actor: str, action: str, entry: ModelVersion, **data: Any) -> None:
    session.add(AuditEvent(actor=actor, action=action, data={"version": entry.version, **data}))


# --- serving -----------------------------------------------------------------


class ActiveModelWatch:
    """The active version as this process sees it, asked of the database at most every *interval* seconds.

    *lookup* returns the active :class:`ModelRef` or None (registry empty). A
    failed lookup keeps the last answer: a database hiccup never switches the
    model a process serves.
    """

    def __init__(self, lookup: Callable[[], ModelRef | None], interval: float = ACTIVE_CHECK_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup = lookup
        self.interval = interval
        self.clock = clock
        self._ref: ModelRef | None = None
        self._checked: float | None = None

    def current(self) -> ModelRef | None:
        now = self.clock()
        if self._checked is None or now - self._checked >= self.interval:
            try:
                self._ref = self.lookup()
            except SQLAlchemyError as exc:
                log.warning("active model lookup failed (%s); serving %s", getattr(exc, "orig", exc),
                            self._ref.version if self._ref else "the configured model")
            self._checked = now
        return self._ref
