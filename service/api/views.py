"""The v1 endpoints: documents in, results out, schemas, health."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from pydantic import BaseModel, ValidationError
from redis import Redis
from redis.exceptions import RedisError
from spectree import Response as SpecResponse
from spectree import SecurityScheme, SecuritySchemeData
from sqlalchemy import and_, delete, or_, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from config.settings import Settings
from service import auth, ratelimit
from service.api.openapi import DocketSpec
from service.api.schemas import (
    DocumentList,
    DocumentOut,
    DocumentSummary,
    Health,
    IdempotencyHeaders,
    ListQuery,
    Problem,
    SchemaList,
    Stats,
    StatsQuery,
    SubmitFile,
    SubmitQuery,
    SubmitText,
)
from service.db import get_db, get_session
from service.doctypes import DocumentType
from service.exceptions import (
    EmptyDocument,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    UnknownDocType,
    UnsupportedMediaType,
)
from service.extract.engine import ModelNotFound
from service.ingest import EML, JSON, PDF, TEXT, PdfLimits, ingest
from service.logs import current_request_id
from service.metrics import CONTENT_TYPE_LATEST, ActiveModelCollector, QueueCollector, observe_stage, render_metrics
from service.models import DONE, FAILED, AuditEvent, Document
from service.queue import QUEUES
from service.stats import compute_stats
from service.storage import FileStore, sha256_of
from service.tasks import active_model_version, enqueue_extraction, get_engine

bp = Blueprint("api", __name__)
bp.after_request(ratelimit.add_headers)

spec = DocketSpec(
    "flask",
    title="Docket API",
    version="1.0.0",
    description="Document extraction: post invoices and tickets, read typed fields with evidence.",
    path="docs",
    security_schemes=[SecurityScheme(name="bearer", data=SecuritySchemeData(type="http", scheme="bearer"))],
    security={"bearer": []},
    # Plain model names in components/schemas (the default appends a hash of the module).
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda parent, child: child,
    # Only the operations decorated below: the review UI is HTML for people, not part of the API.
    mode="strict",
    # Every 422 the API sends is a problem (see parse); spectree itself never answers (skip_validation).
    validation_error_model=Problem,
)

ERRORS = {f"HTTP_{code}": Problem for code in (400, 401, 403, 404, 409, 413, 415, 422, 500, 503)}
ERRORS["HTTP_429"] = (Problem, "Too many requests with this API key: wait Retry-After seconds (RateLimit-* headers)")


def _resp(**ok: type[BaseModel]) -> SpecResponse:
    return SpecResponse(**ok, **ERRORS)


# --- what the app holds ------------------------------------------------------


def settings() -> Settings:
    return current_app.extensions["docket.settings"]


def file_store() -> FileStore:
    return current_app.extensions["docket.files"]


def doc_types() -> dict[str, DocumentType]:
    return current_app.extensions["docket.doc_types"]


def redis() -> Redis:
    return current_app.extensions["docket.redis"]


def require(scope: str) -> auth.ApiKey:
    """Authenticate the request and check *scope*; the key is kept on ``g``."""
    session = get_session()
    key = auth.authenticate(session, request.headers.get("Authorization"))
    ratelimit.enforce(key.id)
    auth.require_scope(key, scope)
    g.api_key = key
    return key


def parse(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequest("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors) from None


# --- rendering ---------------------------------------------------------------


def document_links(doc: Document) -> dict[str, str]:
    return {"self": f"/v1/documents/{doc.id}", "file": f"/v1/documents/{doc.id}/file"}


def summary_json(doc: Document) -> dict[str, Any]:
    data = {name: getattr(doc, name) for name in DocumentSummary.model_fields if name != "links"}
    data["links"] = document_links(doc)
    return DocumentSummary.model_validate(data).model_dump(mode="json")


def document_json(doc: Document) -> dict[str, Any]:
    data = {name: getattr(doc, name) for name in DocumentOut.model_fields if name not in ("links", "result")}
    data["links"] = document_links(doc)
    attempt = doc.latest_extraction
    if attempt is not None:
        data["result"] = {
            "engine": attempt.engine,
            "model_version": attempt.model_version,
            "fields": attempt.fields,
            "validation": attempt.validation,
            "warnings": attempt.warnings,
            "timings_ms": attempt.timings_ms,
            "latency_ms": attempt.latency_ms,
            "tokens": {"prompt": attempt.prompt_tokens, "output": attempt.output_tokens},
            "cost_usd": attempt.cost_usd,
            "created_at": attempt.created_at,
        }
    return DocumentOut.model_validate(data).model_dump(mode="json")


def document_response(doc: Document, status: int) -> Response:
    resp = current_app.json.response(document_json(doc))
    resp.status_code = status
    resp.headers["Location"] = f"/v1/documents/{doc.id}"
    return resp


def load_document(session: Session, document_id: str, key: auth.ApiKey) -> Document:
    doc = session.scalar(
        select(Document).options(selectinload(Document.extractions)).where(Document.id == document_id)
    )
    if doc is None or ("admin" not in key.scopes and doc.client_id != key.client_id):
        raise NotFound(f"No document {document_id}.")
    return doc


# --- documents ---------------------------------------------------------------


# Control characters cannot go into a Content-Disposition header (or PostgreSQL, for NUL), and the
# bidirectional overrides make "invoice\u202efdp.exe" display as "invoiceexe.pdf".
UNSAFE_IN_FILENAMES = dict.fromkeys([*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F),
                                     *range(0x2066, 0x206A)])


def clean_filename(name: str | None) -> str | None:
    """The client's filename without control or bidi-override characters, at most its last 255 characters."""
    cleaned = (name or "").translate(UNSAFE_IN_FILENAMES).strip()
    return cleaned[-255:] or None  # the end keeps the extension


def read_submission() -> tuple[str | None, bytes, str | None, str | None]:
    """(doc_type, bytes, filename, declared media type) from a multipart or JSON body."""
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise EmptyDocument("The request carried no document: send it in a multipart part named 'file'.")
        filename = clean_filename(upload.filename)
        return request.form.get("doc_type"), upload.read(), filename, upload.mimetype
    if request.mimetype == "application/json" or request.mimetype.endswith("+json"):
        payload = request.get_json(silent=True)
        if payload is None:
            raise InvalidRequest("The body is not valid JSON; send {\"doc_type\": ..., \"text\": ...}.")
        if not isinstance(payload, dict):
            raise InvalidRequest("The body must be a JSON object: {\"doc_type\": ..., \"text\": ...}.")
        if "text" in payload and isinstance(payload["text"], str) and not payload["text"].strip():
            raise EmptyDocument("The request carried no document: \"text\" is empty.")
        body = parse(SubmitText, payload)
        return body.doc_type, body.text.encode("utf-8"), clean_filename(body.filename), TEXT
    if not request.mimetype and not request.get_data(cache=True):
        raise EmptyDocument("The request carried no document: the body is empty.")
    raise UnsupportedMediaType(
        f"Cannot take a {request.mimetype or 'body without a Content-Type'}: send multipart/form-data with a "
        "'file' part and a 'doc_type' field, or application/json {\"doc_type\": ..., \"text\": ...}.",
        supported=["multipart/form-data", "application/json"],
    )


def check_doc_type(name: str | None) -> DocumentType:
    known = doc_types()
    if not name:
        raise InvalidRequest(f"Say which document type this is: doc_type, one of {', '.join(sorted(known))}.")
    if name not in known:
        raise UnknownDocType(
            f"Unknown doc_type {name!r}; known types: {', '.join(sorted(known))}.", known=sorted(known)
        )
    return known[name]


def replay(session: Session, key: auth.ApiKey, idem_key: str, request_hash: str) -> Document | None:
    """The document an earlier request with this idempotency key made, if its body was the same."""
    doc = session.scalar(
        select(Document).where(Document.client_id == key.client_id, Document.idempotency_key == idem_key)
    )
    if doc is not None and doc.request_hash != request_hash:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request; use a new key for a new document."
        )
    return doc


def wait_for(session: Session, doc: Document, seconds: float) -> Document:
    deadline = time.monotonic() + seconds
    while doc.status not in (DONE, FAILED) and time.monotonic() < deadline:
        time.sleep(0.2)
        session.expire_all()
        doc = session.get(Document, doc.id)
    return doc


def forget_file(session: Session, digest: str) -> None:
    """Remove a stored file that no document refers to (after a failed insert)."""
    if session.scalar(select(Document.id).where(Document.content_sha256 == digest).limit(1)) is None:
        file_store().delete(digest)


@bp.post("/v1/documents")
@spec.validate(
    json=SubmitText,
    form=SubmitFile,
    query=SubmitQuery,
    headers=IdempotencyHeaders,
    resp=_resp(HTTP_200=DocumentOut, HTTP_202=DocumentOut),
    tags=["documents"],
    skip_validation=True,
)
def submit_document() -> Response:
    """Submit a document for extraction.

    Answers 202 with a Location to poll; with ?wait=N, waits up to N seconds
    and answers 200 with the result when it is ready.
    """
    key = require("submit")
    wait = parse(SubmitQuery, request.args.to_dict()).wait
    idem_key = request.headers.get("Idempotency-Key") or None
    if idem_key is not None and len(idem_key) > 255:
        raise InvalidRequest("Idempotency-Key is at most 255 characters.")
    doc_type_name, data, filename, declared = read_submission()
    doc_type = check_doc_type(doc_type_name)
    cfg = settings()
    started = time.perf_counter()
    ingested = ingest(data, filename, declared, max_bytes=cfg.max_upload_bytes, max_pages=cfg.max_pages,
                      pdf_limits=PdfLimits.from_settings(cfg))
    observe_stage("ingest", doc_type.name, time.perf_counter() - started)

    session = get_session()
    request_hash = hashlib.sha256(f"{doc_type.name}\0{sha256_of(data)}".encode()).hexdigest()
    if idem_key is not None:
        earlier = replay(session, key, idem_key, request_hash)
        if earlier is not None:
            earlier = wait_for(session, earlier, wait)
            return document_response(earlier, 200 if earlier.status in (DONE, FAILED) else 202)

    digest, created = file_store().put(data)
    doc = Document(
        client_id=key.client_id,
        doc_type=doc_type.name,
        filename=filename,
        media_type=ingested.media_type,
        content_sha256=digest,
        size_bytes=len(data),
        page_count=ingested.page_count,
        page_starts=ingested.page_starts,
        has_text_layer=ingested.has_text_layer,
        attachments=ingested.attachments,
        text=ingested.text,
        idempotency_key=idem_key,
        request_hash=request_hash,
    )
    session.add(doc)
    session.flush()
    session.add(
        AuditEvent(
            actor=f"client:{key.client.name}",
            action="document.submitted",
            document_id=doc.id,
            data={"doc_type": doc.doc_type, "sha256": digest, "size": len(data), "request_id": current_request_id()},
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if created:
            forget_file(session, digest)
        if idem_key is not None:  # a concurrent request with the same key won the race
            earlier = replay(session, key, idem_key, request_hash)
            if earlier is not None:
                return document_response(earlier, 202)
        raise
    except SQLAlchemyError:
        session.rollback()
        if created:
            forget_file(session, digest)
        raise

    try:
        enqueue_extraction(redis(), doc.id, cfg)
    except RedisError as exc:
        session.execute(delete(AuditEvent).where(AuditEvent.document_id == doc.id))
        session.delete(doc)
        session.commit()
        if created:
            forget_file(session, digest)
        raise ServiceUnavailable("The job queue is unavailable; nothing was stored. Try again shortly.") from exc

    doc = wait_for(session, doc, wait) if wait else doc
    return document_response(doc, 200 if doc.status in (DONE, FAILED) else 202)


@bp.get("/v1/documents/<document_id>")
@spec.validate(resp=_resp(HTTP_200=DocumentOut), tags=["documents"], skip_validation=True)
def get_document(document_id: str) -> Response:
    """A document: status, route and reasons, and per field value, confidence, evidence and source."""
    key = require("read")
    return document_response(load_document(get_session(), document_id, key), 200)


def encode_cursor(doc: Document) -> str:
    raw = json.dumps([doc.created_at.isoformat(), doc.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created, doc_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created), str(doc_id)
    except (ValueError, TypeError, binascii.Error):
        raise InvalidRequest("The cursor is not one this API gave out; start again without it.") from None


@bp.get("/v1/documents")
@spec.validate(query=ListQuery, resp=_resp(HTTP_200=DocumentList), tags=["documents"], skip_validation=True)
def list_documents() -> Response:
    """Documents, newest first, filtered by status, type, route and date; cursor pagination."""
    key = require("read")
    query = parse(ListQuery, request.args.to_dict())
    stmt = select(Document)
    if "admin" not in key.scopes:
        stmt = stmt.where(Document.client_id == key.client_id)
    if query.status:
        stmt = stmt.where(Document.status == query.status)
    if query.doc_type:
        stmt = stmt.where(Document.doc_type == query.doc_type)
    if query.route:
        stmt = stmt.where(Document.route == query.route)
    if query.created_after:
        stmt = stmt.where(Document.created_at >= query.created_after)
    if query.created_before:
        stmt = stmt.where(Document.created_at < query.created_before)
    if query.cursor:
        created, doc_id = decode_cursor(query.cursor)
        stmt = stmt.where(
            or_(Document.created_at < created, and_(Document.created_at == created, Document.id < doc_id))
        )
    stmt = stmt.order_by(Document.created_at.desc(), Document.id.desc()).limit(query.limit + 1)
    docs = list(get_session().scalars(stmt))
    more = len(docs) > query.limit
    docs = docs[: query.limit]
    body = {"items": [summary_json(d) for d in docs], "next_cursor": encode_cursor(docs[-1]) if more else None}
    return current_app.json.response(body)


@bp.get("/v1/documents/<document_id>/file")
@spec.validate(resp=_resp(), tags=["documents"], skip_validation=True)
def get_document_file(document_id: str) -> Response:
    """The original file, as it was posted."""
    key = require("read")
    doc = load_document(get_session(), document_id, key)
    try:
        data = file_store().get(doc.content_sha256)
    except NotFound:
        raise NotFound(f"The file of document {document_id} is missing from the store.") from None
    name = clean_filename(doc.filename) or f"{doc.id}{'.pdf' if doc.media_type == 'application/pdf' else '.txt'}"
    resp = Response(data, mimetype=doc.media_type)
    resp.headers.set("Content-Disposition", "inline", filename=name)
    resp.set_etag(doc.content_sha256)
    return resp


BINARY = {"type": "string", "format": "binary"}
spec.add_body(
    "get", "/v1/documents/{document_id}/file", 200, description="The file as it was posted.",
    media={PDF: BINARY, EML: BINARY, TEXT: {"type": "string"},
           JSON: {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}},
)


# --- schemas -----------------------------------------------------------------


@bp.get("/v1/schemas")
@spec.validate(resp=_resp(HTTP_200=SchemaList), tags=["schemas"], skip_validation=True)
def list_schemas() -> Response:
    """The document types this service extracts."""
    require("read")
    items = [
        {"name": t.name, "description": t.description, "fields": [f.name for f in t.fields], "url": f"/v1/schemas/{t.name}"}
        for t in doc_types().values()
    ]
    return current_app.json.response({"items": items})


@bp.get("/v1/schemas/<doc_type>")
@spec.validate(resp=_resp(), tags=["schemas"], skip_validation=True)
def get_schema(doc_type: str) -> Response:
    """One document type's JSON Schema."""
    require("read")
    known = doc_types()
    if doc_type not in known:
        raise NotFound(f"No document type {doc_type!r}; known types: {', '.join(sorted(known))}.")
    resp = current_app.json.response(known[doc_type].schema)
    resp.mimetype = "application/schema+json"
    return resp


spec.add_body("get", "/v1/schemas/{doc_type}", 200, description="A JSON Schema (2020-12).",
              media={"application/schema+json": {"type": "object"}})


# --- stats -------------------------------------------------------------------


@bp.get("/v1/stats")
@spec.validate(query=StatsQuery, resp=_resp(HTTP_200=Stats), tags=["stats"], skip_validation=True)
def get_stats() -> Response:
    """Straight-through, escalation and review rates, frontier spend and cost per 1,000 documents, by type and period.

    An admin key sees every client's documents and the month's frontier budget; other keys their own documents.
    """
    key = require("read")
    query = parse(StatsQuery, request.args.to_dict())
    client_id = None if "admin" in key.scopes else key.client_id
    report = compute_stats(get_session(), settings(), query.period, query.since, query.until, query.doc_type,
                           client_id=client_id)
    return current_app.json.response(report)


@bp.get("/metrics")
@spec.validate(resp=_resp(), tags=["health"], skip_validation=True)
def metrics() -> Response:
    """Prometheus metrics (read scope): request and stage latencies, routes, frontier spend, queues, the model."""
    require("read")
    cfg = settings()
    scraped = [QueueCollector(redis(), QUEUES), ActiveModelCollector(lambda: active_model_version(cfg, get_db()))]
    return Response(render_metrics(scraped), content_type=CONTENT_TYPE_LATEST)  # it names its charset already


spec.add_body("get", "/metrics", 200, description="The Prometheus text format.", media={"text/plain": {"type": "string"}})


# --- health ------------------------------------------------------------------


@bp.get("/healthz")
@spec.validate(resp=SpecResponse(HTTP_200=Health), tags=["health"], security={}, skip_validation=True)
def healthz() -> Response:
    """The process is up."""
    return current_app.json.response({"status": "ok", "checks": {}})


@bp.get("/readyz")
@spec.validate(resp=SpecResponse(HTTP_200=Health, HTTP_503=Health), tags=["health"], security={}, skip_validation=True)
def readyz() -> Response:
    """The database, Redis and the model are all there."""
    checks: dict[str, str] = {}
    try:
        get_session().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        redis().ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    try:
        checks["model"] = f"ok: {get_engine(settings()).model_version}"
    except ModelNotFound as exc:
        checks["model"] = f"unavailable: {exc}"
    except Exception as exc:  # an active version whose files are broken: not ready, and no 500 from a probe
        checks["model"] = f"unavailable: {type(exc).__name__}"
    ok = all(v.startswith("ok") for v in checks.values())
    resp = current_app.json.response({"status": "ok" if ok else "unavailable", "checks": checks})
    resp.status_code = 200 if ok else 503
    return resp


@bp.get("/openapi.json")
@spec.validate(resp=SpecResponse(), tags=["health"], security={}, skip_validation=True)
def openapi() -> Response:
    """The OpenAPI 3.1 document, generated from the models above."""
    return current_app.json.response(spec.spec)



spec.add_body("get", "/openapi.json", 200, description="This document.",
              media={"application/json": {"type": "object", "required": ["openapi", "paths"]}})
