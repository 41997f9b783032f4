"""Prometheus counters for routing and the frontier bill.

Counters live in prometheus-client's default registry; :func:`render` is
what ``GET /metrics`` returns. Under gunicorn or several rq workers set
``PROMETHEUS_MULTIPROCESS_DIR`` and prometheus-client aggregates the
processes (see its multiprocess mode); nothing here changes for that.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client import multiprocess

__all__ = ["CONTENT_TYPE_LATEST", "record_decision", "record_frontier_call", "render_metrics"]

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


def render_metrics(multiprocess_dir: str | None = None) -> bytes:
    """The exposition text: this process's registry, or every process's under multiprocess mode."""
    multiprocess_dir = multiprocess_dir or os.environ.get("PROMETHEUS_MULTIPROCESS_DIR")
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
