"""Routing statistics and the bill, as pure aggregation over one row per document.

For each document type and period (day or month): how many documents went
straight through, how many were escalated to a frontier model, how many went
to review, what the frontier cost, the cost per 1,000 documents, and what the
same documents would have cost sent to the frontier model alone.

The frontier-only estimate: an escalated document cost what its frontier call
cost; any other document is priced from the small model's token counts for
it, scaled by the frontier/model token ratio seen on escalated documents
(1.0 when there are none yet), at the configured frontier model's price.

:func:`load_rows` (the one function that reads the database) is at the end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.exceptions import FrontierConfigError
from service.frontier import Price, price_for
from service.models import Document, ExtractionAttempt
from service.routing import REVIEW, STRAIGHT_THROUGH

__all__ = [
    "DocumentRow",
    "PERIODS",
    "compute_stats",
    "format_stats",
    "frontier_spend",
    "load_rows",
    "month_start",
    "monthly_frontier_spend",
    "period_key",
    "summarize",
]

PERIODS = ("day", "month")
ALL = "all"


@dataclass(frozen=True)
class DocumentRow:
    """One routed document, with what its attempts used."""

    doc_type: str
    created_at: datetime
    route: str
    model_input_tokens: int = 0
    model_output_tokens: int = 0
    frontier_calls: int = 0
    frontier_input_tokens: int = 0
    frontier_output_tokens: int = 0
    frontier_cost_usd: float = 0.0

    @property
    def escalated(self) -> bool:
        return self.frontier_calls > 0


def period_key(when: datetime, period: str) -> str:
    if period == "day":
        return when.strftime("%Y-%m-%d")
    if period == "month":
        return when.strftime("%Y-%m")
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")


def token_ratios(rows: Iterable[DocumentRow]) -> tuple[float, float]:
    """Frontier tokens per model token, input and output, over documents that have both."""
    both = [r for r in rows if r.frontier_input_tokens > 0 and r.model_input_tokens > 0]
    model_in = sum(r.model_input_tokens for r in both)
    model_out = sum(r.model_output_tokens for r in both)
    ratio_in = sum(r.frontier_input_tokens for r in both) / model_in if model_in else 1.0
    ratio_out = sum(r.frontier_output_tokens for r in both) / model_out if model_out else 1.0
    return ratio_in, ratio_out


def frontier_only_cost(row: DocumentRow, price: Price, ratios: tuple[float, float]) -> float:
    """What *row*'s document would have cost sent straight to the frontier model."""
    if row.frontier_input_tokens > 0:
        return price.cost(row.frontier_input_tokens, row.frontier_output_tokens)
    return price.cost(row.model_input_tokens * ratios[0], row.model_output_tokens * ratios[1])


def summarize(rows: Sequence[DocumentRow], period: str = "month", price: Price | None = None) -> dict[str, Any]:
    """Totals, and one group per (period, document type), newest period first.

    Without a *price* (no frontier configured) the frontier-only figures are null.
    """
    ratios = token_ratios(rows)
    groups: dict[tuple[str, str], list[DocumentRow]] = defaultdict(list)
    for row in rows:
        groups[(period_key(row.created_at, period), row.doc_type)].append(row)
    ordered = sorted(groups.items(), key=lambda item: (-_sortable(item[0][0]), item[0][1]))
    return {
        "period": period,
        "totals": _group(ALL, ALL, rows, price, ratios),
        "groups": [_group(key, doc_type, members, price, ratios) for (key, doc_type), members in ordered],
        "estimate": {
            "frontier_tokens_per_model_token": {"input": round(ratios[0], 4), "output": round(ratios[1], 4)},
            "price_per_mtok_usd": (
                {"input": price.input_per_mtok, "output": price.output_per_mtok} if price is not None else None
            ),
        },
    }


def _sortable(key: str) -> int:
    return int(key.replace("-", ""))


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _group(key: str, doc_type: str, rows: Sequence[DocumentRow], price: Price | None,
           ratios: tuple[float, float]) -> dict[str, Any]:
    n = len(rows)
    straight = sum(r.route == STRAIGHT_THROUGH for r in rows)
    review = sum(r.route == REVIEW for r in rows)
    escalated = sum(r.escalated for r in rows)
    spend = sum(r.frontier_cost_usd for r in rows)
    frontier_only = sum(frontier_only_cost(r, price, ratios) for r in rows) if price is not None else None
    return {
        "period": key,
        "doc_type": doc_type,
        "documents": n,
        "straight_through": straight,
        "escalated": escalated,
        "review": review,
        "straight_through_rate": _rate(straight, n),
        "escalation_rate": _rate(escalated, n),
        "review_rate": _rate(review, n),
        "frontier_calls": sum(r.frontier_calls for r in rows),
        "frontier_spend_usd": round(spend, 6),
        "cost_per_1000_usd": round(spend / n * 1000, 4) if n else None,
        "frontier_only_cost_usd": round(frontier_only, 6) if frontier_only is not None else None,
        "frontier_only_cost_per_1000_usd": round(frontier_only / n * 1000, 4) if n and frontier_only is not None else None,
        "savings_rate": round(1 - spend / frontier_only, 4) if frontier_only else None,
    }


def format_stats(stats: dict[str, Any]) -> str:
    """A plain-text table of :func:`summarize`'s result, for the CLI."""
    header = ("period", "type", "docs", "straight", "escalated", "review", "spend $", "$/1000", "frontier-only $/1000")
    lines = [header]
    for g in [*stats["groups"], stats["totals"]]:
        lines.append((
            g["period"], g["doc_type"], str(g["documents"]),
            _pct(g["straight_through_rate"]), _pct(g["escalation_rate"]), _pct(g["review_rate"]),
            f"{g['frontier_spend_usd']:.4f}", _money(g["cost_per_1000_usd"]), _money(g["frontier_only_cost_per_1000_usd"]),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


# ------------------------------------------------------------------ reading


def load_rows(session: Session, since: datetime | None = None, until: datetime | None = None,
              doc_type: str | None = None, client_id: int | None = None) -> list[DocumentRow]:
    """One :class:`DocumentRow` per routed document created in ``[since, until)`` (of one API client if given)."""
    is_model = ExtractionAttempt.engine == "model"
    is_frontier = ExtractionAttempt.engine == "frontier"
    usage = (
        select(
            ExtractionAttempt.document_id.label("document_id"),
            func.sum(case((is_model, ExtractionAttempt.prompt_tokens), else_=0)).label("model_in"),
            func.sum(case((is_model, ExtractionAttempt.output_tokens), else_=0)).label("model_out"),
            func.sum(case((is_frontier, 1), else_=0)).label("frontier_calls"),
            func.sum(case((is_frontier, ExtractionAttempt.prompt_tokens), else_=0)).label("frontier_in"),
            func.sum(case((is_frontier, ExtractionAttempt.output_tokens), else_=0)).label("frontier_out"),
            func.sum(case((is_frontier, ExtractionAttempt.cost_usd), else_=0.0)).label("frontier_cost"),
        )
        .group_by(ExtractionAttempt.document_id)
        .subquery()
    )
    stmt = (
        select(Document.doc_type, Document.created_at, Document.route, usage)
        .join(usage, usage.c.document_id == Document.id, isouter=True)
        .where(Document.route.is_not(None))
    )
    if since is not None:
        stmt = stmt.where(Document.created_at >= since)
    if until is not None:
        stmt = stmt.where(Document.created_at < until)
    if doc_type:
        stmt = stmt.where(Document.doc_type == doc_type)
    if client_id is not None:
        stmt = stmt.where(Document.client_id == client_id)
    return [
        DocumentRow(
            doc_type=row.doc_type,
            created_at=row.created_at,
            route=row.route,
            model_input_tokens=int(row.model_in or 0),
            model_output_tokens=int(row.model_out or 0),
            frontier_calls=int(row.frontier_calls or 0),
            frontier_input_tokens=int(row.frontier_in or 0),
            frontier_output_tokens=int(row.frontier_out or 0),
            frontier_cost_usd=float(row.frontier_cost or 0.0),
        )
        for row in session.execute(stmt)
    ]


def frontier_spend(session: Session, since: datetime, until: datetime | None = None) -> float:
    """USD spent on frontier calls (attempts with ``engine == "frontier"``) in ``[since, until)``."""
    stmt = select(func.coalesce(func.sum(ExtractionAttempt.cost_usd), 0.0)).where(
        ExtractionAttempt.engine == "frontier", ExtractionAttempt.created_at >= since
    )
    if until is not None:
        stmt = stmt.where(ExtractionAttempt.created_at < until)
    return float(session.scalar(stmt) or 0.0)


def month_start(now: datetime) -> datetime:
    """The first instant of *now*'s calendar month (in *now*'s zone; the service works in UTC)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def monthly_frontier_spend(session: Session, now: datetime) -> float:
    """What the frontier calls of *now*'s calendar month cost: the budget's left side."""
    return frontier_spend(session, month_start(now), next_month_start(now))


# ------------------------------------------------------------------ the report

DEFAULT_WINDOW = {"day": 30, "month": 366}  # days looked back when no start is given


def stats_price(settings) -> Price | None:
    """The configured frontier model's price, or None (no frontier, or no price for it)."""
    if settings.frontier_provider == "none":
        return None
    try:
        return price_for(settings)
    except FrontierConfigError:
        return None


def compute_stats(session: Session, settings, period: str = "month", since: datetime | None = None,
                  until: datetime | None = None, doc_type: str | None = None,
                  now: datetime | None = None, client_id: int | None = None) -> dict[str, Any]:
    """:func:`summarize` over the documents of a window (default: the last 30 days by day, a year by month).

    With *client_id*, only that API client's documents count and the
    service-wide budget is left out.
    """
    period_key(datetime.now(timezone.utc), period)  # rejects an unknown period before any query
    now = now or datetime.now(timezone.utc)
    if since is None:
        since = now - timedelta(days=DEFAULT_WINDOW[period])
        since = month_start(since) if period == "month" else since.replace(hour=0, minute=0, second=0, microsecond=0)
    stats = summarize(load_rows(session, since, until, doc_type, client_id), period, stats_price(settings))
    stats["window"] = {"since": since.isoformat(), "until": until.isoformat() if until else None,
                       "doc_type": doc_type}
    if client_id is not None:
        return stats
    budget = settings.frontier_monthly_budget_usd
    spent = monthly_frontier_spend(session, now)
    stats["budget"] = {"month": period_key(now, "month"), "budget_usd": budget, "spent_usd": round(spent, 6),
                       "exhausted": settings.frontier_provider != "none" and spent >= budget}
    return stats
