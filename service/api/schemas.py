"""Request and response models of the v1 API; the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator
from spectree.model_adapter.pydantic_adapter import BaseFile


_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)?")


def _rfc3339(value: Any) -> Any:
    """Only what the document promises (format: date-time); pydantic alone also takes "0.5" as a Unix time."""
    if not isinstance(value, datetime) and not (isinstance(value, str) and _RFC3339.fullmatch(value)):
        raise ValueError("expected an RFC 3339 date-time such as 2024-05-01T00:00:00Z")
    return value


Timestamp = Annotated[datetime, BeforeValidator(_rfc3339)]


class Problem(BaseModel):
    """An RFC 9457 problem: every error the API answers with."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="What went wrong and what to do about it.")
    instance: str | None = None
    request_id: str | None = Field(default=None, description="The request's X-Request-Id, to quote when reporting it.")


class SubmitText(BaseModel):
    """A document sent as text in a JSON body."""

    model_config = ConfigDict(extra="forbid")

    doc_type: str = Field(min_length=1, description="A document type from GET /v1/schemas, e.g. invoice or ticket.",
                          examples=["ticket"])
    text: str = Field(pattern=r"\S", description="The document's text: not empty, not only whitespace.",
                      examples=["From: dana@example.com\nSubject: VPN down\n\nThe VPN refuses my password."])
    filename: str | None = Field(default=None, max_length=255)


class SubmitFile(BaseModel):
    """A document sent as a file in a multipart/form-data body."""

    doc_type: str = Field(min_length=1, description="A document type from GET /v1/schemas.", examples=["invoice"])
    file: BaseFile = Field(description="A PDF, plain text, an .eml e-mail or JSON {\"text\": ...}.")


MAX_WAIT_S = 60  # the longest ?wait=; gunicorn.conf.py gives a request at least this long


class SubmitQuery(BaseModel):
    wait: float = Field(default=0, ge=0, le=MAX_WAIT_S, description="Block up to this many seconds for the result.")


class IdempotencyHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        max_length=255,
        description="The same key with the same body answers the same document; with another body, 409.",
    )


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["queued", "processing", "done", "failed"] | None = None
    doc_type: str | None = None
    route: Literal["straight_through", "review"] | None = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, description="next_cursor from the previous page.")


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: Literal["day", "month"] = "month"
    since: Timestamp | None = Field(default=None, description="Count documents created at or after (default: 30 days by day, a year by month).")
    until: Timestamp | None = Field(default=None, description="Count documents created before.")
    doc_type: str | None = None


class StatsGroup(BaseModel):
    model_config = ConfigDict(extra="allow")

    period: str = Field(description="YYYY-MM-DD or YYYY-MM; 'all' in the totals.")
    doc_type: str = Field(description="A document type; 'all' in the totals.")
    documents: int
    straight_through_rate: float | None = None
    escalation_rate: float | None = Field(default=None, description="Share of documents a frontier model was asked about.")
    review_rate: float | None = None
    frontier_spend_usd: float
    cost_per_1000_usd: float | None = None
    frontier_only_cost_per_1000_usd: float | None = Field(
        default=None, description="Estimate for the same documents sent to the frontier model alone."
    )


class Stats(BaseModel):
    """Routing rates and the frontier bill, per document type and period."""

    model_config = ConfigDict(extra="allow")

    period: Literal["day", "month"]
    totals: StatsGroup
    groups: list[StatsGroup]


class EvidenceOut(BaseModel):
    start: int = Field(description="Character offset into the document text.")
    end: int
    page: int = Field(description="1-based page.")
    text: str


class FieldOut(BaseModel):
    value: Any = None
    raw: Any = None
    confidence: float | None = None
    evidence: EvidenceOut | None = None
    source: Literal["model", "frontier", "human"] = "model"
    problems: list[str] = []
    items: list[dict[str, FieldOut]] | None = None
    candidates: list[dict[str, Any]] | None = Field(
        default=None, description="After a frontier escalation: the model's and the frontier's value."
    )


class RuleFailureOut(BaseModel):
    name: str
    fields: list[str]
    message: str


class ExtractionOut(BaseModel):
    engine: Literal["model", "frontier", "human"]
    model_version: str
    fields: dict[str, FieldOut]
    validation: list[RuleFailureOut] = []
    warnings: list[str] = []
    timings_ms: dict[str, float] = {}
    latency_ms: float
    tokens: dict[str, int] = {}
    cost_usd: float = 0.0
    created_at: datetime


class RouteReason(BaseModel):
    """Why a document went to review: a code, and the field or rule it is about."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="e.g. low_confidence, missing_required, failed_rule, no_text_layer.")
    message: str | None = None
    field: str | None = None


class Links(BaseModel):
    self: str
    file: str


class DocumentSummary(BaseModel):
    id: str
    doc_type: str
    status: Literal["queued", "processing", "done", "failed"]
    route: Literal["straight_through", "review"] | None = None
    route_reasons: list[RouteReason] = []
    filename: str | None = None
    media_type: str
    created_at: datetime
    completed_at: datetime | None = None
    links: Links


class DocumentOut(DocumentSummary):
    content_sha256: str
    size_bytes: int
    page_count: int
    has_text_layer: bool
    attachments: list[str] = []
    attempts: int
    error: str | None = None
    updated_at: datetime
    result: ExtractionOut | None = Field(default=None, description="The latest extraction, once there is one.")


class DocumentList(BaseModel):
    items: list[DocumentSummary]
    next_cursor: str | None = None


class SchemaSummary(BaseModel):
    name: str
    description: str
    fields: list[str]
    url: str


class SchemaList(BaseModel):
    items: list[SchemaSummary]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


# --- the learning loop -------------------------------------------------------


class TrainingRunRequest(BaseModel):
    """Options of a retraining run; every one has a sensible default."""

    model_config = ConfigDict(extra="forbid")

    seed: int | None = Field(default=None, description="Seed for sampling and training (default 1337).")
    steps: int | None = Field(default=None, ge=1, le=100_000, description="Training steps (default: one pass).")
    replay: int | None = Field(default=None, ge=0, le=10_000, description="Earlier training examples mixed in.")
    approved_repeats: int | None = Field(default=None, ge=1, le=10,
                                        description="Most passes over the approved examples (default 8).")
    approved_views: int | None = Field(default=None, ge=1, le=100_000,
                                       description="About how many approved examples a run shows in all (default "
                                                   "300 on a CPU, 400 on a GPU): fewer passes as corrections grow.")
    eval_shared: int | None = Field(default=None, ge=0, le=10_000,
                                    description="Documents per evaluation split of ../shared/data to guard on.")
    train_layers: int | None = Field(default=None, ge=0, le=1_000,
                                     description="Continuing an adapter, only its top N layers learn: shorter steps, "
                                                 "less learned (0: every layer; default 20 on a CPU, every layer "
                                                 "on a GPU).")
    precision: Literal["auto", "fp32", "bf16"] | None = Field(
        default=None, description="Training arithmetic (default auto: bf16 where the chip multiplies bf16 natively, "
                                  "a GPU or a CPU with AMX or AVX-512 BF16; fp32 elsewhere).")
    warm_start: StrictBool | None = Field(default=None, description="Continue the active model's adapter (default "
                                                                    "true) or train a fresh one from the base.")

    @field_validator("seed", "steps", "replay", "approved_repeats", "approved_views", "eval_shared",
                     "train_layers", mode="before")
    @classmethod
    def _json_integer(cls, value: Any) -> Any:
        """A JSON Schema integer: 3 or 3.0, never true or "3" (which pydantic alone would take)."""
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError("expected an integer")
        return value


class TrainingProgress(BaseModel):
    model_config = ConfigDict(extra="allow")

    stage: str | None = Field(default=None, description="data, train, build, calibrate, evaluate or done.")
    step: int | None = None
    total: int | None = None
    loss: float | None = None
    eta_s: float | None = None


class TrainingRunOut(BaseModel):
    id: int
    status: Literal["queued", "processing", "done", "failed"]
    requested_by: str
    base_model_version: str | None = Field(default=None, description="The active version when the run was requested.")
    output_model_version: str | None = Field(default=None, description="The version the run registered.")
    params: dict[str, Any] = {}
    progress: TrainingProgress = TrainingProgress()
    metrics: dict[str, Any] = Field(default={}, description="Loss curve, golden-set report and the gate's comparison.")
    error: str | None = None
    log: str = ""
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    links: dict[str, str] = {}


class ModelVersionOut(BaseModel):
    version: str
    status: Literal["candidate", "active", "retired", "rejected"]
    parent: str | None = None
    previous: str | None = Field(default=None, description="The version a rollback from this one returns to.")
    base_model: str
    data_hash: str
    path: str
    sha256: str
    doc_types: list[str] = []
    metrics: dict[str, Any] = {}
    gate: dict[str, Any] = Field(default={}, description="The comparison that promoted or rejected it.")
    training_run_id: int | None = None
    created_at: datetime
    activated_at: datetime | None = None


class ModelList(BaseModel):
    active: str | None = Field(description="The served version; null while the default model is served.")
    items: list[ModelVersionOut]
