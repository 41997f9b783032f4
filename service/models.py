"""The database tables, as SQLAlchemy 2.0 typed models.

Alembic's migrations in ``migrations/`` are generated from this metadata and a
test checks that the two never drift.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Document status: where it is in the pipeline. The route (straight_through |
# review) is a separate column, set once extraction has run.
QUEUED, PROCESSING, DONE, FAILED = "queued", "processing", "done", "failed"
STATUSES = (QUEUED, PROCESSING, DONE, FAILED)
ENGINES = ("model", "frontier", "human")
SCOPES = ("submit", "read", "review", "train", "admin")
ROLES = ("reviewer", "engineer", "admin")  # people in the review UI
# Review task state: open (in the queue), approved or rejected by a person.
OPEN, APPROVED, REJECTED = "open", "approved", "rejected"
# Model version status (see service.registry); REJECTED above doubles as "failed the gate".
CANDIDATE, ACTIVE, RETIRED = "candidate", "active", "retired"
MODEL_STATUSES = (CANDIDATE, ACTIVE, RETIRED, REJECTED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ApiClient(Base):
    """A system that calls the API (an ERP, a mail gateway); owns keys and documents."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Webhooks (service.webhooks): where events are POSTed, and the secret that signs them.
    # The secret has to be kept in clear to sign with; it is shown once, when it is made.
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(100))

    keys: Mapped[list[ApiKey]] = relationship(back_populates="client")


class ApiKey(Base):
    """A bearer key. Only its SHA-256 is stored; ``prefix`` finds it without scanning."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    client: Mapped[ApiClient] = relationship(back_populates="keys")


class User(Base):
    """A person who reviews documents in the review UI."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="reviewer")  # reviewer | engineer | admin
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Document(Base):
    """One submitted document: its text, where it is in the pipeline and the route it took."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key"),
        Index("ix_documents_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id", ondelete="SET NULL"), index=True)
    doc_type: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    content_sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    page_count: Mapped[int] = mapped_column(Integer, default=1)
    page_starts: Mapped[list[Any]] = mapped_column(default=list)
    has_text_layer: Mapped[bool] = mapped_column(Boolean, default=True)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    route: Mapped[str | None] = mapped_column(String(32))
    route_reasons: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None]

    client: Mapped[ApiClient | None] = relationship()
    extractions: Mapped[list[ExtractionAttempt]] = relationship(
        back_populates="document", order_by="ExtractionAttempt.id", cascade="all, delete-orphan"
    )
    reviews: Mapped[list[Review]] = relationship(
        back_populates="document", order_by="Review.id", cascade="all, delete-orphan"
    )

    @property
    def latest_extraction(self) -> ExtractionAttempt | None:
        return self.extractions[-1] if self.extractions else None


class ExtractionAttempt(Base):
    """One engine's answer for a document: the model, a frontier model or a person."""

    __tablename__ = "extraction_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    engine: Mapped[str] = mapped_column(String(16))  # model | frontier | human
    model_version: Mapped[str] = mapped_column(String(200), default="")
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)  # name -> {value, confidence, evidence, ...}
    validation: Mapped[list[Any]] = mapped_column(default=list)  # [{name, fields, message}]
    warnings: Mapped[list[Any]] = mapped_column(default=list)
    timings_ms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    document: Mapped[Document] = relationship(back_populates="extractions")


class Review(Base):
    """One field changed by a person: the value before and after."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("extraction_attempts.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(200))
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    document: Mapped[Document] = relationship(back_populates="reviews")


class ReviewTask(Base):
    """A document's place in the review queue: who holds it, until when, and how it ended.

    ``version`` grows with every change a reviewer could miss (a new holder, a
    decision); a save that names an older version is refused, never merged.
    The row is created when a document is first claimed.
    """

    __tablename__ = "review_tasks"

    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default=OPEN, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    claimed_until: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    reject_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    document: Mapped[Document] = relationship()
    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class TrainingExample(Base):
    """An approved document for the learning loop: the text the engine saw and the values a person accepted.

    ``origins`` says per field whether the accepted value came from the model,
    the frontier model or the person; ``golden`` examples (a stable hash of the
    document's content) are held back for evaluation and never trained on.
    """

    __tablename__ = "training_examples"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("extraction_attempts.id", ondelete="SET NULL"))
    doc_type: Mapped[str] = mapped_column(String(64), index=True)
    text: Mapped[str] = mapped_column(Text)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)
    origins: Mapped[dict[str, Any]] = mapped_column(default=dict)  # field -> model | frontier | human
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approver: Mapped[str] = mapped_column(String(254), default="")
    golden: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class AuditEvent(Base):
    """Who did what, when: append-only."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))  # client:<name> | user:<email> | worker | cli
    action: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[str | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ModelVersion(Base):
    """A model artifact the engine can load, with the metrics it was judged on (see :mod:`service.registry`).

    ``status`` is candidate (registered, not judged), active (served; at most
    one), retired (was active, replaced) or rejected (failed the gate; ``gate``
    holds the comparison). ``previous`` is the version that was active when
    this one became active: what a rollback goes back to.
    """

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(200), unique=True)
    parent: Mapped[str | None] = mapped_column(String(200))  # the version it was trained against
    base_model: Mapped[str] = mapped_column(String(200), default="")
    data_hash: Mapped[str] = mapped_column(String(64), default="")  # SHA-256 of the training examples
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), default="")  # of the artifact folder's files
    doc_types: Mapped[list[Any]] = mapped_column(default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    gate: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the comparison that promoted or rejected it
    status: Mapped[str] = mapped_column(String(16), default=CANDIDATE, index=True)
    previous: Mapped[str | None] = mapped_column(String(200))
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]

    @hybrid_property
    def active(self) -> bool:
        return self.status == ACTIVE

    @active.inplace.setter
    def _active_setter(self, value: bool) -> None:
        self.status = ACTIVE if value else (RETIRED if self.status == ACTIVE else self.status or CANDIDATE)

    @active.inplace.expression
    @classmethod
    def _active_expression(cls):
        return cls.status == ACTIVE


class TrainingRun(Base):
    """One retraining run: what it started from, how far it is, what it made and how it scored.

    Status goes queued → processing → done | failed. ``slot`` is 1 while the
    run is queued or processing and NULL after; its unique constraint lets the
    database itself refuse a second concurrent run. ``progress`` is the latest
    ``{step, total, loss, eta_s, stage}``; ``log`` grows line by line.
    """

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    base_model_version: Mapped[str] = mapped_column(String(200), default="")
    output_model_version: Mapped[str | None] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    log: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One attempt to deliver one webhook event to a client: what was sent where, and what came back.

    ``delivery_id`` is the event's ``Docket-Webhook-Id``, the same on every
    retry; ``outcome`` is delivered, retrying (a retry is scheduled), failed
    (no retries left) or refused (the URL is not one Docket sends to).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_client_id_created_at", "client_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(32), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2000))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
