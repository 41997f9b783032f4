"""Prometheus metrics: requests, extraction stages, routing, the frontier bill, queues, the model.

Counters and histograms live in prometheus-client's default registry, written
by the process that counts (the API for requests and ingestion, the workers
for the engine's stages, routing and frontier calls). Under gunicorn, or with
workers on the API's machine, set ``PROMETHEUS_MULTIPROC_DIR`` (that exact
name: prometheus-client reads no other) to one empty folder for all of them:
each process writes its own files and :func:`render_metrics` (``GET
/metrics``) sums them.

What is read at scrape time rather than counted — queue depths and workers
from Redis, the active model version from the registry — comes from
collectors the caller passes to :func:`render_metrics`. They are added to the
registry of that one scrape, because multiprocess mode aggregates only the
files counters write, not custom collectors or ``Info`` metrics.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker

__all__ = [
    "CONTENT_TYPE_LATEST",
    "ActiveModelCollector",
    "QueueCollector",
    "observe_request",
    "observe_stage",
    "record_decision",
    "record_frontier_call",
    "render_metrics",
]

log = logging.getLogger(__name__)

STAGES = ("ingest", "prefill", "decode", "validate")

DOCUMENTS = Counter(
    "docket_documents_routed_total", "Documents routed, by document type, route and whether a frontier model was asked.",
    ["doc_type", "route", "escalated"],
)
FRONTIER_CALLS = Counter(
    "docket_frontier_calls_total", "Frontier model calls, by provider, model and outcome (ok or the failure code).",
    ["provider", "model", "outcome"],
)
FRONTIER_SPEND = Counter("docket_frontier_spend_usd_total", "USD spent on frontier model calls.", ["provider", "model"])
FRONTIER_TOKENS = Counter(
    "docket_frontier_tokens_total", "Tokens billed by frontier models.", ["provider", "model", "direction"]
)
ESCALATIONS_SKIPPED = Counter(
    "docket_escalations_skipped_total", "Uncertain documents sent to review without a frontier call, by reason.",
    ["doc_type", "reason"],
)


REQUEST_LATENCY = Histogram(
    "docket_http_request_duration_seconds",
    "HTTP request latency, by route template (not the raw path), method and status class (2xx, 4xx, ...).",
    ["route", "method", "status"],
)
STAGE_LATENCY = Histogram(
    "docket_extraction_stage_duration_seconds",
    "Time per extraction stage and document type: ingest (API), prefill and decode (engine), validate "
    "(validation and routing, worker).",
    ["stage", "doc_type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_LATENCY.labels(route, method, f"{status // 100}xx").observe(seconds)


def observe_stage(stage: str, doc_type: str, seconds: float) -> None:
    if stage not in STAGES:
        raise ValueError(f"unknown extraction stage {stage!r}; known: {', '.join(STAGES)}")
    STAGE_LATENCY.labels(stage, doc_type).observe(seconds)


def record_decision(doc_type: str, route: str, escalated: bool, skipped_reason: str | None = None) -> None:
    DOCUMENTS.labels(doc_type, route, "true" if escalated else "false").inc()
    if skipped_reason:
        ESCALATIONS_SKIPPED.labels(doc_type, skipped_reason).inc()


def record_frontier_call(provider: str, model: str, outcome: str, input_tokens: int, output_tokens: int,
                         cost_usd: float) -> None:
    FRONTIER_CALLS.labels(provider, model, outcome).inc()
    if cost_usd > 0:
        FRONTIER_SPEND.labels(provider, model).inc(cost_usd)
    if input_tokens > 0:
        FRONTIER_TOKENS.labels(provider, model, "input").inc(input_tokens)
    if output_tokens > 0:
        FRONTIER_TOKENS.labels(provider, model, "output").inc(output_tokens)


# --- read at scrape time ----------------------------------------------------


class QueueCollector:
    """Jobs per rq queue and state (queued, started, scheduled, deferred, failed) and workers per queue.

    Counts only (LLEN, ZCARD): a scrape never cleans a registry or changes a job.
    A Redis that cannot be reached gives no queue metrics and a warning, not a failed scrape.
    """

    def __init__(self, connection: Redis, queues: Iterable[str]) -> None:
        self.connection = connection
        self.queues = tuple(queues)

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("docket_queue_jobs", "rq jobs per queue and state, read from Redis at scrape time.",
                                 labels=["queue", "state"])
        workers = GaugeMetricFamily("docket_queue_workers", "rq workers listening on each queue.", labels=["queue"])
        try:
            for name in self.queues:
                queue = Queue(name, connection=self.connection)
                jobs.add_metric([name, "queued"], queue.count)
                for state, registry in (("started", queue.started_job_registry),
                                        ("scheduled", queue.scheduled_job_registry),
                                        ("deferred", queue.deferred_job_registry),
                                        ("failed", queue.failed_job_registry)):
                    jobs.add_metric([name, state], registry.get_job_count(cleanup=False))
                workers.add_metric([name], Worker.count(connection=self.connection, queue=queue))
        except RedisError as exc:
            log.warning("queue metrics unavailable: %s", exc)
            return
        yield jobs
        yield workers


class ActiveModelCollector:
    """The model version the fleet serves: the registry's active version, else the configured model.

    *lookup* returns (version, source) or None when there is no model at all.
    """

    def __init__(self, lookup: Callable[[], tuple[str, str] | None]) -> None:
        self.lookup = lookup

    def collect(self) -> Iterator[Metric]:
        found = self.lookup()
        if found is None:
            return
        version, source = found
        info = InfoMetricFamily("docket_model_active", "The active model version and where it comes from "
                                "(registry: promoted; configured: DOCKET_MODEL_DIR or the default model).")
        info.add_metric([], {"version": version, "source": source})
        yield info


class _DefaultRegistry:
    """This process's own metrics (the default registry), for a scrape outside multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        return REGISTRY.collect()


def render_metrics(collectors: Iterable[object] = (), multiprocess_dir: str | None = None) -> bytes:
    """The exposition text: this process's metrics, or every process's under multiprocess mode, and *collectors*."""
    multiprocess_dir = multiprocess_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = CollectorRegistry()
    if multiprocess_dir:
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_DefaultRegistry())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
