"""rq jobs: they take ids, run the stages and persist what the stages return.

``process_document`` loads a document, asks the engine for its fields,
validates them, decides the route and writes the extraction attempt and the
decision in one transaction. It can run twice for the same document (a retry
after a worker died): a finished document is left alone, an unfinished one is
simply done again.

Each worker process keeps one loaded engine per model folder
(:func:`get_engine`), so the model is read once, not once per job. Workers are
:class:`DocketWorker`, an rq ``SimpleWorker``: jobs run in the worker process
itself (no fork), because an onnxruntime session does not survive a fork and
the cache would be lost with every child.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Callback, Queue, Retry, SimpleWorker, get_current_job
from rq.job import Job
from rq.timeouts import JobTimeoutException
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from config.settings import Settings, get_settings
from service.db import Database
from service.doctypes import DocumentType, load_document_types
from service import metrics
from service.escalation import BUDGET_EXHAUSTED, FRONTIER_FAILED, escalate
from service.exceptions import FrontierConfigError, UnknownDocType
from service.extract.artifacts import resolve_model_dir
from service.extract.engine import Engine, ModelNotFound, model_version_of
from service.frontier import FrontierClient, make_frontier_client
from service.ingest import IngestedDocument
from service.logs import current_request_id, log_context
from service.models import DONE, FAILED, PROCESSING, QUEUED, AuditEvent, Document, ExtractionAttempt, utcnow
from service.queue import EXTRACTION, QUEUES, TRAINING
from service.registry import ActiveModelWatch, ModelRef, active_ref
from service.routing import REVIEW, Decision, decide, thresholds_for
from service.stats import monthly_frontier_spend
from service.validate import apply_rule_failures, validate
from service.warmup import request_guard_warmup
from service.webhooks import events as webhook_events

log = logging.getLogger(__name__)

HEARTBEAT_SLACK_S = 15
NO_TEXT_LAYER = {"code": "no_text_layer", "message": "no text layer"}

# --- per-process state -------------------------------------------------------

_ENGINES: dict[str, Engine] = {}
_WATCHES: dict[str, ActiveModelWatch] = {}


def active_model_watch(settings: Settings, db: Database | None = None) -> ActiveModelWatch:
    """This process's view of the registry's active version, one per database."""
    key = settings.database_uri
    watch = _WATCHES.get(key)
    if watch is None:
        database = db or Database(key)

        def lookup() -> ModelRef | None:
            with database.session() as session:
                return active_ref(session)

        watch = _WATCHES[key] = ActiveModelWatch(lookup)
    return watch


def get_engine(settings: Settings, db: Database | None = None) -> Engine:
    """The engine for the active model version, loaded once per process and switched without a restart.

    The registry's active version wins; with none registered, *settings*'
    model (``model_dir`` or the default model) is served. The registry is read
    at most every :data:`service.registry.ACTIVE_CHECK_S` seconds, so a
    promotion reaches this process within that interval; the new model loads
    on the next call. A job holds the engine it got, so a job already running
    finishes on it. If the new version cannot be loaded, the engine already
    loaded keeps serving and the error is logged.
    """
    ref = active_model_watch(settings, db).current()
    model_dir = ref.path if ref else resolve_model_dir(settings)
    key = str(model_dir)
    engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    try:
        engine = Engine(model_dir, settings)
    except ModelNotFound:
        if ref is None or not _ENGINES:
            raise
        log.exception("cannot load model version %s from %s; still serving the model loaded before", ref.version, model_dir)
        return next(iter(_ENGINES.values()))
    if ref is not None and engine.model_version != ref.version:
        engine.model_version = ref.version  # extractions record the registry's version id
    _ENGINES.clear()  # the replaced engine lives on only in jobs still holding it
    _ENGINES[key] = engine
    log.info("serving model %s from %s", engine.model_version, model_dir)
    return engine


def active_model_version(settings: Settings, db: Database | None = None) -> tuple[str, str] | None:
    """(version, source) of the model jobs are served by, without loading it: for ``/metrics``."""
    ref = active_model_watch(settings, db).current()
    if ref is not None:
        return ref.version, "registry"
    version = model_version_of(resolve_model_dir(settings))
    return (version, "configured") if version else None


_FRONTIERS: dict[tuple[str, str, str], FrontierClient | None] = {}


def get_frontier(settings: Settings) -> FrontierClient | None:
    """The frontier client for *settings*, built once per process so its circuit breaker remembers."""
    key = (settings.frontier_provider, settings.frontier_model, settings.frontier_base_url)
    if key not in _FRONTIERS:
        _FRONTIERS[key] = make_frontier_client(settings)
    return _FRONTIERS[key]


@dataclass
class Runtime:
    """What a job needs, built once per worker process from the settings."""

    settings: Settings
    db: Database
    doc_types: dict[str, DocumentType] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Runtime":
        database = webhook_events.attach(Database(settings.database_uri), settings,
                                         webhook_events.worker_connection(settings))
        return cls(settings, database, load_document_types(settings.schema_dir))


_runtime: Runtime | None = None


def init_runtime(settings: Settings | None = None) -> Runtime:
    """Set up this process for jobs; a worker calls it once at start."""
    global _runtime
    if _runtime is not None:
        _runtime.db.dispose()
    _runtime = Runtime.from_settings(settings or get_settings())
    return _runtime


def get_runtime() -> Runtime:
    return _runtime or init_runtime()


# --- enqueueing --------------------------------------------------------------


def extraction_job_id(document_id: str) -> str:
    """A document's job id: one per document, so Redis can be asked whether that job still exists."""
    return f"extract-{document_id}"


def enqueue_extraction(connection: Redis, document_id: str, settings: Settings) -> Job:
    """Queue extraction of one document, with a timeout and retries.

    A job whose worker died (SIGKILL, a lost machine) is found by rq's
    maintenance once its heartbeat lapses (the job timeout plus a minute) and
    retried like a job that raised. The current request id goes with the job
    (``meta``), so the worker's log lines for it carry the same id. A job Redis
    itself lost is found by :func:`requeue_lost_documents`.
    """
    queue = Queue(EXTRACTION, connection=connection)
    return queue.enqueue(
        process_document,
        document_id,
        job_id=extraction_job_id(document_id),
        job_timeout=settings.job_timeout_s,
        retry=Retry(max=settings.job_retries) if settings.job_retries > 0 else None,
        on_failure=Callback(record_job_failure),
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        description=f"extract {document_id}",
        meta={"request_id": current_request_id()} if current_request_id() else None,
    )


# --- the jobs ----------------------------------------------------------------


def to_ingested(doc: Document) -> IngestedDocument:
    return IngestedDocument(
        text=doc.text,
        media_type=doc.media_type,
        page_count=doc.page_count,
        page_starts=list(doc.page_starts or [0]),
        has_text_layer=doc.has_text_layer,
        attachments=list(doc.attachments or []),
    )


def process_document(document_id: str) -> dict[str, Any]:
    """Extract, validate, route and persist one document."""
    runtime = get_runtime()
    job = get_current_job()
    with runtime.db.session() as session:
        doc = session.get(Document, document_id)
        if doc is None:
            log.warning("document %s is gone; nothing to do", document_id)
            return {"document_id": document_id, "status": "missing"}
        if doc.status == DONE:
            return {"document_id": doc.id, "status": doc.status, "route": doc.route}
        doc.status = PROCESSING
        doc.attempts += 1
        doc.job_id = job.id if job else None
        log.info("document %s: extraction attempt %d", doc.id, doc.attempts)
        session.add(
            AuditEvent(
                actor="worker",
                action="extraction.started",
                document_id=doc.id,
                data={"attempt": doc.attempts, "job_id": doc.job_id},
            )
        )
        session.commit()

        doc_type = runtime.doc_types.get(doc.doc_type)
        if doc_type is None:
            raise UnknownDocType(f"No schema for document type {doc.doc_type!r} in {runtime.settings.schema_dir}.")

        if not doc.has_text_layer:
            doc.route, doc.route_reasons = REVIEW, [dict(NO_TEXT_LAYER)]
            metrics.record_decision(doc.doc_type, REVIEW, escalated=False)
        else:
            engine = get_engine(runtime.settings, runtime.db)
            started = time.perf_counter()
            extraction = engine.extract(doc_type, to_ingested(doc))
            latency_ms = (time.perf_counter() - started) * 1000.0
            observe_engine_stages(doc.doc_type, extraction.timings_ms)
            settings = runtime.settings
            started = time.perf_counter()
            failures = validate(doc_type, extraction.values(), tolerance=settings.rule_tolerance)
            apply_rule_failures(extraction, failures, settings.rule_penalty)
            thresholds = thresholds_for(engine.meta, doc_type.name)  # per field, chosen at calibration
            decision = decide(
                doc_type,
                extraction,
                failures,
                thresholds=thresholds,
                default_threshold=settings.default_threshold,
                has_text_layer=doc.has_text_layer,
            )
            metrics.observe_stage("validate", doc.doc_type, time.perf_counter() - started)
            result = extraction.to_dict()
            session.add(
                ExtractionAttempt(
                    document_id=doc.id,
                    engine="model",
                    model_version=extraction.model_version,
                    fields=result["fields"],
                    validation=[{"name": f.name, "fields": list(f.fields), "message": f.message} for f in failures],
                    warnings=result["warnings"],
                    timings_ms=result["timings_ms"],
                    latency_ms=round(latency_ms, 2),
                    prompt_tokens=int(extraction.tokens.get("prompt", 0)),
                    output_tokens=int(extraction.tokens.get("output", 0)),
                    cost_usd=0.0,
                )
            )
            decision = escalate_document(session, runtime, doc, doc_type, extraction, failures, decision, thresholds)
            doc.route, doc.route_reasons = decision.route, [dict(r) for r in decision.reasons]
        doc.status = DONE
        doc.error = None
        doc.completed_at = utcnow()
        session.add(
            AuditEvent(
                actor="worker",
                action="extraction.done",
                document_id=doc.id,
                data={"route": doc.route, "reasons": doc.route_reasons},
            )
        )
        webhook_events.document_finished(session, doc)  # queued once this commit succeeds
        session.commit()
        log.info("document %s done: %s", doc.id, doc.route, extra={"route": doc.route})
        return {"document_id": doc.id, "status": doc.status, "route": doc.route}


def observe_engine_stages(doc_type: str, timings_ms: dict[str, float]) -> None:
    """The engine's own stage timings into Prometheus: prefill, and decode (model calls after it plus masking)."""
    metrics.observe_stage("prefill", doc_type, timings_ms.get("prefill", 0.0) / 1000.0)
    metrics.observe_stage("decode", doc_type, (timings_ms.get("decode", 0.0) + timings_ms.get("mask", 0.0)) / 1000.0)


def escalate_document(session, runtime: Runtime, doc: Document, doc_type: DocumentType, extraction, failures,
                      decision: Decision, thresholds: dict[str, float]) -> Decision:
    """Ask the frontier model about a document the model is unsure of (see :mod:`service.escalation`).

    A call is recorded as a ``frontier`` attempt — its merged fields with both
    candidates, tokens and cost, or the failure and what it still cost — and
    committed at once, so the month's spend never misses a paid call.
    """
    settings = runtime.settings
    if decision.route != REVIEW or not decision.escalatable:
        metrics.record_decision(doc.doc_type, decision.route, escalated=False)
        return decision
    try:
        client = get_frontier(settings)
    except FrontierConfigError as exc:
        log.error("frontier escalation is off: %s", exc.detail)
        client = None
    spent = monthly_frontier_spend(session, utcnow()) if client is not None else 0.0
    started = time.perf_counter()
    outcome = escalate(
        doc_type, extraction, doc.text, decision, client,
        spent_usd=spent,
        budget_usd=settings.frontier_monthly_budget_usd,
        failures=failures,
        thresholds=thresholds,
        default_threshold=settings.default_threshold,
        frontier_confidence=settings.frontier_confidence,
        revalidate=lambda values: validate(doc_type, values, tolerance=settings.rule_tolerance),
    )
    if outcome.called:
        merged = outcome.extraction.to_dict()
        session.add(
            ExtractionAttempt(
                document_id=doc.id,
                engine="frontier",
                model_version=f"{outcome.provider}:{outcome.model}",
                fields=outcome.merge.fields_dict() if outcome.merge else merged["fields"],
                validation=[f.to_dict() for f in validate(doc_type, outcome.extraction.values(),
                                                          tolerance=settings.rule_tolerance)],
                warnings=[f"frontier {outcome.error.code}: {outcome.error.detail}"] if outcome.error else [],
                latency_ms=round((time.perf_counter() - started) * 1000.0, 2),
                prompt_tokens=outcome.input_tokens,
                output_tokens=outcome.output_tokens,
                cost_usd=outcome.cost_usd,
            )
        )
        session.commit()
        metrics.record_frontier_call(outcome.provider, outcome.model, outcome.error.code if outcome.error else "ok",
                                     outcome.input_tokens, outcome.output_tokens, outcome.cost_usd)
    skipped = None
    if not outcome.decision.escalated:
        skipped = next((r.get("error", r["code"]) for r in outcome.decision.reasons
                        if r["code"] in (BUDGET_EXHAUSTED, FRONTIER_FAILED)), "no_frontier")
    metrics.record_decision(doc.doc_type, outcome.decision.route, outcome.decision.escalated, skipped)
    session.add(
        AuditEvent(
            actor="worker",
            action="extraction.escalated" if outcome.decision.escalated else "extraction.not_escalated",
            document_id=doc.id,
            data={"escalated": outcome.decision.escalated, "reason": skipped, "provider": outcome.provider,
                  "model": outcome.model, "cost_usd": outcome.cost_usd},
        )
    )
    return outcome.decision


def describe_failure(exc: BaseException) -> str:
    """What went wrong, for a person: a timeout is named as such even when a later error hides it."""
    if isinstance(exc, SystemExit):  # rq's cold shutdown (a second SIGTERM) stops the job where it is
        return "SystemExit: the worker was shut down mid-job"
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, JobTimeoutException):
            return f"JobTimeoutException: {seen}"
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def record_job_failure(job: Job, connection: Redis, exc_type: type, exc: BaseException, tb: Any) -> None:
    """rq failure callback: a retry puts the document back in the queue, the last failure marks it failed."""
    document_id = job.args[0] if job.args else None
    if not document_id:
        return
    retrying = bool(job.retries_left)
    message = describe_failure(exc)
    with get_runtime().db.session() as session:
        doc = session.get(Document, document_id)
        if doc is None or doc.status == DONE:
            return
        doc.status = QUEUED if retrying else FAILED
        doc.error = message
        session.add(
            AuditEvent(
                actor="worker",
                action="extraction.retry" if retrying else "extraction.failed",
                document_id=doc.id,
                data={"error": message, "job_id": job.id, "retries_left": job.retries_left or 0},
            )
        )
        session.commit()
    log.warning("document %s: %s (%s)", document_id, message, "retrying" if retrying else "failed")


# --- documents whose job was lost ---------------------------------------------

REQUEUE_LOCK = "docket:requeue-lost-documents"
EXISTS_BATCH = 500


def requeue_lost_documents(connection: Redis, db: Database, settings: Settings) -> list[str]:
    """Enqueue again every unfinished document whose job Redis no longer has; return their ids.

    A Redis restarted without persistence comes back empty: the queued jobs
    are gone, and nothing in rq knows they existed. The database still does,
    so a worker's maintenance pass compares the two. A queued document counts
    as lost once it has been without a job for ``requeue_after_s`` (a document
    committed a moment ago is about to be enqueued by the API); a processing
    one only after its job timeout as well, because its worker may still be
    finishing it.
    """
    now = utcnow()
    queued_before = now - timedelta(seconds=settings.requeue_after_s)
    processing_before = queued_before - timedelta(seconds=settings.job_timeout_s + HEARTBEAT_SLACK_S)
    with db.session() as session:
        candidates = session.execute(
            select(Document.id, Document.status).where(or_(
                and_(Document.status == QUEUED, Document.updated_at < queued_before),
                and_(Document.status == PROCESSING, Document.updated_at < processing_before),
            )).order_by(Document.created_at)
        ).all()
        lost: list[tuple[str, str]] = []
        for start in range(0, len(candidates), EXISTS_BATCH):
            batch = candidates[start:start + EXISTS_BATCH]
            with connection.pipeline(transaction=False) as pipe:
                for doc_id, _ in batch:
                    pipe.exists(Job.key_for(extraction_job_id(doc_id)))
                found = pipe.execute()
            lost.extend(row for row, exists in zip(batch, found) if not exists)
        requeued = []
        for doc_id, status in lost:
            # The database first, and only while the document is as found (a worker that took it
            # meanwhile keeps it); should the enqueue then fail, the next pass finds it again.
            changed = session.execute(update(Document).where(Document.id == doc_id, Document.status == status)
                                      .values(status=QUEUED, updated_at=utcnow()))
            if changed.rowcount != 1:
                session.rollback()
                continue
            session.add(AuditEvent(actor="worker", action="extraction.requeued", document_id=doc_id,
                                   data={"job_id": extraction_job_id(doc_id), "was": status,
                                         "reason": "its job was gone from Redis"}))
            session.commit()
            enqueue_extraction(connection, doc_id, settings)
            requeued.append(doc_id)
            log.warning("document %s was %s but its job was gone from Redis; enqueued again", doc_id, status)
    return requeued


# --- the worker --------------------------------------------------------------


COMMAND_POLL_S = 1.0  # how long the worker's command listener blocks between looks
PROCESS_DOCUMENT = f"{process_document.__module__}.{process_document.__qualname__}"  # rq's job.func_name


class DocketWorker(SimpleWorker):
    """An rq worker that runs jobs in its own process, keeping the engine loaded between jobs.

    Each job runs inside a :func:`service.logs.log_context` naming it. A job's
    execution entry expires :data:`HEARTBEAT_SLACK_S` seconds after its
    timeout (rq's default is a minute): a job timeout fires between two model
    calls, so a few seconds of slack are enough, and a job whose worker was
    killed becomes visible to the next maintenance pass that much sooner.
    """

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run *job* with its document, job and request ids on every line logged meanwhile (rq's own included)."""
        document_id = job.args[0] if job.func_name == PROCESS_DOCUMENT and job.args else None
        with log_context(request_id=job.meta.get("request_id"), job_id=job.id, document_id=document_id):
            super().execute_job(job, queue)

    def subscribe(self) -> None:
        """rq's command channel, with its listener thread waking every second instead of every minute.

        Once the listener has read the reply to the worker's unsubscribe,
        redis-py has it wait up to its wake-up interval for a new
        subscription, and stopping the worker (a burst's end, a shutdown)
        waited for it: with rq's 60 s, a minute.
        """
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(
            sleep_time=COMMAND_POLL_S, daemon=True, exception_handler=self._pubsub_exception_handler)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.timeout and job.timeout > 0:
            return int(job.timeout - working_time) + HEARTBEAT_SLACK_S
        return super().get_heartbeat_ttl(job, working_time)

    @property
    def dequeue_timeout(self) -> int:
        """An idle worker waits for a job no longer than its maintenance interval, so maintenance still runs."""
        return max(1, min(self.worker_ttl - 15, self.maintenance_interval))

    def run_maintenance_tasks(self) -> None:
        """rq's cleaning; then (one extraction worker at a time) :func:`requeue_lost_documents`, and on a
        training worker the served model's guard scored ahead of the next run (:mod:`service.warmup`)."""
        super().run_maintenance_tasks()
        if TRAINING in self.queue_names():
            self.warm_served_guard()
        if EXTRACTION not in self.queue_names():
            return
        runtime = get_runtime()
        lock_s = max(int(self.maintenance_interval) - 1, 1)  # free again by the next pass
        try:
            if self.connection.set(REQUEUE_LOCK, self.name, nx=True, ex=lock_s):
                requeue_lost_documents(self.connection, runtime.db, runtime.settings)
        except (RedisError, SQLAlchemyError):
            log.exception("could not look for documents whose job was lost; trying again next maintenance pass")

    def warm_served_guard(self) -> None:
        """Ask, once per served version, for its guard to be scored before a run needs it."""
        runtime = get_runtime()
        try:
            served = active_model_version(runtime.settings, runtime.db)
            request_guard_warmup(self.connection, runtime.settings, served[0] if served else None)
        except (RedisError, SQLAlchemyError):
            log.exception("could not ask for the served model's guard to be scored; trying again next maintenance pass")


def make_worker(connection: Redis, queues: tuple[str, ...] = QUEUES, **kwargs: Any) -> DocketWorker:
    return DocketWorker([Queue(name, connection=connection) for name in queues], connection=connection, **kwargs)
