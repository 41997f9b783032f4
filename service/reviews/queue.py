"""The review queue: documents awaiting a person, filtered, sorted and counted; the next one to take."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from service.models import DONE, OPEN, Document, ExtractionAttempt, ReviewTask, User, utcnow
from service.reviews.reading import dismissable, lowest_confidence
from service.routing import REVIEW

SORTS = ("age", "confidence", "type")
CLAIM_FILTERS = ("all", "free", "mine")


@dataclass
class QueueItem:
    document: Document
    task: ReviewTask | None
    attempt: ExtractionAttempt | None
    lowest_confidence: float | None
    reasons: list[str]
    holder: User | None  # who holds an unexpired claim
    dismissable: bool = False  # may be approved in bulk

    def age(self, now: datetime) -> timedelta:
        return now - self.document.created_at


@dataclass
class Queue:
    items: list[QueueItem]
    total: int
    by_type: Counter = field(default_factory=Counter)
    by_reason: Counter = field(default_factory=Counter)
    claimed: int = 0


def claim_active(task: ReviewTask | None, now: datetime) -> bool:
    return bool(task and task.claimed_by_id and task.claimed_until and task.claimed_until > now)


def awaiting_review():
    """The WHERE clause of the queue (with ReviewTask outer-joined)."""
    return and_(
        Document.route == REVIEW,
        Document.status == DONE,
        or_(ReviewTask.state.is_(None), ReviewTask.state == OPEN),
    )


def list_queue(
    session: Session,
    user: User,
    *,
    doc_type: str | None = None,
    reason: str | None = None,
    claim: str = "all",
    sort: str = "age",
    threshold: float = 0.9,
    now: datetime | None = None,
) -> Queue:
    """Documents awaiting review, filtered and sorted; the counts are over the whole queue."""
    now = now or utcnow()
    rows = session.execute(
        select(Document, ReviewTask)
        .outerjoin(ReviewTask, ReviewTask.document_id == Document.id)
        .where(awaiting_review())
        .options(selectinload(Document.extractions))
        .order_by(Document.created_at, Document.id)
    ).all()
    holders = {u.id: u for u in session.scalars(
        select(User).where(User.id.in_({t.claimed_by_id for _, t in rows if t and t.claimed_by_id}))
    )}
    queue = Queue(items=[], total=len(rows))
    for doc, task in rows:
        attempt = doc.latest_extraction
        codes = list(dict.fromkeys(r.get("code", "?") for r in doc.route_reasons or []))
        holder = holders.get(task.claimed_by_id) if claim_active(task, now) else None
        item = QueueItem(doc, task, attempt, lowest_confidence(attempt.fields) if attempt else None, codes, holder,
                         dismissable(doc, threshold))
        queue.by_type[doc.doc_type] += 1
        queue.by_reason.update(codes)
        queue.claimed += holder is not None
        if doc_type and doc.doc_type != doc_type:
            continue
        if reason and reason not in codes:
            continue
        if claim == "free" and holder is not None or claim == "mine" and (holder is None or holder.id != user.id):
            continue
        queue.items.append(item)
    if sort == "confidence":
        queue.items.sort(key=lambda i: (i.lowest_confidence is None, i.lowest_confidence or 0.0))
    elif sort == "type":
        queue.items.sort(key=lambda i: (i.document.doc_type, i.document.created_at))
    return queue


def next_document_id(session: Session, user: User, exclude: set[str] = frozenset(),
                     now: datetime | None = None) -> str | None:
    """The oldest document awaiting review that nobody else holds."""
    now = now or utcnow()
    query = (
        select(Document.id)
        .outerjoin(ReviewTask, ReviewTask.document_id == Document.id)
        .where(awaiting_review())
        .where(or_(ReviewTask.claimed_by_id.is_(None), ReviewTask.claimed_by_id == user.id,
                   ReviewTask.claimed_until <= now))
        .order_by(Document.created_at, Document.id)
    )
    if exclude:
        query = query.where(Document.id.not_in(exclude))
    return session.scalar(query.limit(1))
