"""The review workflow, without Flask: the queue, claims, approval, rejection and history.

A document awaits review when its route is ``review``, extraction is done and
no person has approved or rejected it. Every change to a :class:`ReviewTask`
is a compare-and-set on its ``version`` (``UPDATE … WHERE version = :seen``),
so two reviewers racing never both win and a save made against an older
version is refused with :class:`StaleReview` rather than merged.

Approving writes, in one transaction: an :class:`ExtractionAttempt` with
engine ``human`` (the values now in force), one :class:`Review` row per changed
field (before → after), an audit event listing the changes, and a
:class:`TrainingExample` for the learning loop.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from service.doctypes import DocumentType
from service.exceptions import AlreadyDecided, ClaimedByOther, InvalidRequest, NotFound, StaleReview
from service.models import (
    APPROVED,
    DONE,
    OPEN,
    REJECTED,
    AuditEvent,
    Document,
    ExtractionAttempt,
    Review,
    ReviewTask,
    TrainingExample,
    User,
    utcnow,
)
from service.routing import REVIEW
from service.validate import validate

# How the queue names each routing reason; unknown codes are shown as they are.
REASON_LABELS = {
    "low_confidence": "low confidence",
    "missing_required": "missing value",
    "failed_rule": "failed rule",
    "frontier_disagreement": "frontier disagreement",
    "no_text_layer": "no text layer",
    "truncated": "truncated",
}
SORTS = ("age", "confidence", "type")
CLAIM_FILTERS = ("all", "free", "mine")


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code.replace("_", " "))


def actor_of(user: User) -> str:
    return f"user:{user.email}"


# --- reading an extraction ------------------------------------------------------


def lowest_confidence(fields: dict[str, Any]) -> float | None:
    """The smallest confidence of any field or line-item cell."""
    found: list[float] = []
    for result in fields.values():
        if not isinstance(result, dict):
            continue
        if result.get("items"):
            found += [cell.get("confidence", 0.0) for row in result["items"] for cell in row.values()]
        elif result.get("confidence") is not None:
            found.append(float(result["confidence"]))
    return min(found) if found else None


def latest_machine_attempt(doc: Document, engine: str | None = None) -> ExtractionAttempt | None:
    for attempt in reversed(doc.extractions):
        if attempt.engine != "human" and (engine is None or attempt.engine == engine):
            return attempt
    return None


def same_value(a: Any, b: Any) -> bool:
    """Equality that treats 12 and 12.0 alike and compares rows cell by cell."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def candidates(doc: Document) -> dict[str, list[dict[str, Any]]]:
    """Fields on which the model and the frontier model disagree, with both answers.

    Taken from a field's own ``candidates`` list (written by escalation for
    every field; only differing ones count), otherwise by comparing the latest
    model and frontier attempts. Line-item tables are edited, not picked.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    latest = doc.latest_extraction
    for name, result in (latest.fields if latest else {}).items():
        found = result.get("candidates") if isinstance(result, dict) and "items" not in result else None
        if found and len(found) > 1 and not all(same_value(found[0].get("value"), c.get("value")) for c in found):
            out[name] = [{"source": c.get("source", "?"), "value": c.get("value")} for c in found]
    model, frontier = latest_machine_attempt(doc, "model"), latest_machine_attempt(doc, "frontier")
    if model is None or frontier is None:
        return out
    for name, result in model.fields.items():
        other = frontier.fields.get(name)
        if name in out or not isinstance(other, dict) or "items" in result:
            continue
        if not same_value(result.get("value"), other.get("value")):
            out[name] = [{"source": "model", "value": result.get("value")},
                         {"source": "frontier", "value": other.get("value")}]
    return out


# --- the queue ------------------------------------------------------------------


@dataclass
class QueueItem:
    document: Document
    task: ReviewTask | None
    attempt: ExtractionAttempt | None
    lowest_confidence: float | None
    reasons: list[str]
    holder: User | None  # who holds an unexpired claim

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
        item = QueueItem(doc, task, attempt, lowest_confidence(attempt.fields) if attempt else None, codes, holder)
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


# --- claims ---------------------------------------------------------------------


def load_for_review(session: Session, document_id: str) -> tuple[Document, ReviewTask | None]:
    doc = session.get(Document, document_id)
    if doc is None or doc.route != REVIEW or doc.status != DONE:
        raise NotFound(f"No document {document_id} awaits review.")
    return doc, session.get(ReviewTask, document_id)


def _compare_and_set(session: Session, task: ReviewTask, *guards, **values: Any) -> bool:
    """Apply *values* if the task is still at the version we read and *guards* hold."""
    result = session.execute(
        update(ReviewTask)
        .where(ReviewTask.document_id == task.document_id, ReviewTask.version == task.version, *guards)
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def claim(session: Session, document_id: str, user: User, minutes: int, now: datetime | None = None) -> ReviewTask:
    """Lock the document to *user* for *minutes*; renewing one's own claim keeps the version."""
    now = now or utcnow()
    doc, task = load_for_review(session, document_id)
    if task is None:
        session.add(ReviewTask(document_id=doc.id, state=OPEN, version=0))
        try:
            session.commit()
        except IntegrityError:  # someone else created it first; go by theirs
            session.rollback()
        task = session.get(ReviewTask, document_id)
    session.refresh(task)
    if task.state != OPEN:
        raise AlreadyDecided(f"This document was {task.state} already.")
    if claim_active(task, now) and task.claimed_by_id != user.id:
        raise_claimed(session, task)
    new_holder = task.claimed_by_id != user.id
    until = now + timedelta(minutes=minutes)
    ok = _compare_and_set(
        session,
        task,
        ReviewTask.state == OPEN,
        or_(ReviewTask.claimed_by_id.is_(None), ReviewTask.claimed_by_id == user.id, ReviewTask.claimed_until <= now),
        claimed_by_id=user.id,
        claimed_until=until,
        version=task.version + (1 if new_holder else 0),
    )
    if not ok:
        session.rollback()
        session.refresh(task)
        raise_claimed(session, task)
    if new_holder:
        session.add(AuditEvent(actor=actor_of(user), action="review.claimed", document_id=doc.id,
                               data={"until": until.isoformat()}))
    session.commit()
    session.refresh(task)
    return task


def raise_claimed(session: Session, task: ReviewTask) -> None:
    if task.state != OPEN:
        raise AlreadyDecided(f"This document was {task.state} already.")
    holder = session.get(User, task.claimed_by_id) if task.claimed_by_id else None
    until = task.claimed_until.strftime("%H:%M UTC") if task.claimed_until else "?"
    who = holder.email if holder else "another reviewer"
    raise ClaimedByOther(f"{who} is reviewing this document (claimed until {until}).",
                         holder=who, until=task.claimed_until.isoformat() if task.claimed_until else None)


def release(session: Session, document_id: str, user: User) -> None:
    """Give a claim back (skip); does nothing when *user* does not hold it."""
    task = session.get(ReviewTask, document_id)
    if task is None or task.claimed_by_id != user.id or task.state != OPEN:
        return
    if _compare_and_set(session, task, ReviewTask.claimed_by_id == user.id, claimed_by_id=None, claimed_until=None):
        session.add(AuditEvent(actor=actor_of(user), action="review.released", document_id=document_id, data={}))
    session.commit()


def _check_current(session: Session, doc: Document, task: ReviewTask | None, user: User, version: int,
                   attempt_id: int | None) -> ReviewTask:
    """Refuse a decision made on a version of the document that is no longer current."""
    if task is None:
        raise StaleReview("Claim this document before saving it.")
    session.refresh(task)
    if task.state != OPEN:
        raise AlreadyDecided(f"This document was {task.state} already; your changes were not saved.")
    latest = doc.latest_extraction
    if task.version != version or (latest.id if latest else None) != attempt_id:
        raise StaleReview("Someone else changed this document since you opened it; your changes were not saved. "
                          "Reload it to see the current version.")
    if task.claimed_by_id is not None and task.claimed_by_id != user.id:
        raise_claimed(session, task)
    if task.claimed_by_id is None:
        raise StaleReview("You no longer hold this document; claim it again before saving.")
    return task


# --- decisions ------------------------------------------------------------------


def is_golden(content_sha256: str, share: float) -> bool:
    """Stable hold-back: the same document content always lands on the same side."""
    digest = hashlib.sha256(f"golden:{content_sha256}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


@dataclass
class Change:
    field: str
    before: Any
    after: Any


def human_fields(doc_type: DocumentType, shown: dict[str, Any], values: dict[str, Any]) -> tuple[
        dict[str, Any], list[Change], dict[str, str]]:
    """The attempt fields a person approved, the changes against what was shown, and each value's origin."""
    fields: dict[str, Any] = {}
    changes: list[Change] = []
    origins: dict[str, str] = {}
    for spec in doc_type.fields:
        before_result = shown.get(spec.name) or {}
        before = before_result.get("value")
        after = values.get(spec.name)
        changed = not same_value(before, after)
        origin = "human" if changed else before_result.get("source", "model")
        origins[spec.name] = origin
        if changed:
            changes.append(Change(spec.name, before, after))
        result = {
            "value": after,
            "raw": after if changed else before_result.get("raw", after),
            "confidence": 1.0,
            "evidence": None if changed else before_result.get("evidence"),
            "source": origin,
            "problems": [],
        }
        if spec.kind == "array":
            result["items"] = [
                {item.name: {"value": row.get(item.name), "raw": row.get(item.name), "confidence": 1.0,
                             "evidence": None, "source": origin, "problems": []} for item in spec.items}
                for row in after or []
            ]
        fields[spec.name] = result
    return fields, changes, origins


def approve(
    session: Session,
    doc_type: DocumentType,
    document_id: str,
    user: User,
    *,
    version: int,
    attempt_id: int | None,
    values: dict[str, Any],
    golden_share: float,
) -> TrainingExample:
    """Store the approved values, the changes, the audit trail and the training example."""
    doc, task = load_for_review(session, document_id)
    task = _check_current(session, doc, task, user, version, attempt_id)
    shown = doc.latest_extraction.fields if doc.latest_extraction else {}
    fields, changes, origins = human_fields(doc_type, shown, values)
    now = utcnow()
    if not _compare_and_set(session, task, ReviewTask.state == OPEN, ReviewTask.claimed_by_id == user.id,
                            state=APPROVED, version=task.version + 1, decided_by_id=user.id, decided_at=now,
                            claimed_by_id=None, claimed_until=None):
        session.rollback()
        raise StaleReview("Someone else changed this document while you were saving; your changes were not saved.")
    failures = validate(doc_type, values)
    attempt = ExtractionAttempt(
        document_id=doc.id,
        engine="human",
        model_version=actor_of(user),
        fields=fields,
        validation=[{"name": f.name, "fields": list(f.fields), "message": f.message} for f in failures],
    )
    session.add(attempt)
    session.flush()
    for change in changes:
        session.add(Review(document_id=doc.id, attempt_id=attempt.id, user_id=user.id, field=change.field,
                           before=change.before, after=change.after))
    example = TrainingExample(
        document_id=doc.id,
        attempt_id=attempt.id,
        doc_type=doc.doc_type,
        text=doc.text,
        values={spec.name: values.get(spec.name) for spec in doc_type.fields},
        origins=origins,
        approved_by_id=user.id,
        approver=user.email,
        golden=is_golden(doc.content_sha256, golden_share),
    )
    session.add(example)
    session.add(AuditEvent(
        actor=actor_of(user),
        action="review.approved",
        document_id=doc.id,
        data={
            "changes": [{"field": c.field, "before": c.before, "after": c.after} for c in changes],
            "version": task.version + 1,
            "rules_failed": [f.name for f in failures],
        },
    ))
    session.commit()
    return example


def reject(session: Session, document_id: str, user: User, *, version: int, attempt_id: int | None,
           reason: str) -> None:
    """Take the document out of the queue with the reviewer's reason (unreadable, wrong type, …)."""
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidRequest("Say why the document is rejected.")
    doc, task = load_for_review(session, document_id)
    task = _check_current(session, doc, task, user, version, attempt_id)
    if not _compare_and_set(session, task, ReviewTask.state == OPEN, ReviewTask.claimed_by_id == user.id,
                            state=REJECTED, version=task.version + 1, decided_by_id=user.id, decided_at=utcnow(),
                            reject_reason=reason, claimed_by_id=None, claimed_until=None):
        session.rollback()
        raise StaleReview("Someone else changed this document while you were saving; nothing was saved.")
    session.add(AuditEvent(actor=actor_of(user), action="review.rejected", document_id=doc.id,
                           data={"reason": reason}))
    session.commit()


# --- history --------------------------------------------------------------------


@dataclass
class HistoryEntry:
    at: datetime
    kind: str  # attempt | event | review | example
    actor: str
    title: str
    data: Any = None


def history(session: Session, doc: Document) -> list[HistoryEntry]:
    """Every extraction attempt, routing decision, claim, review and change, oldest first."""
    entries: list[HistoryEntry] = []
    users = {u.id: u.email for u in session.scalars(select(User))}
    for attempt in doc.extractions:
        actor = attempt.model_version if attempt.engine == "human" else f"{attempt.engine} {attempt.model_version}"
        entries.append(HistoryEntry(attempt.created_at, "attempt", actor.strip(),
                                    f"extraction by {attempt.engine}", attempt))
    for event in session.scalars(select(AuditEvent).where(AuditEvent.document_id == doc.id)):
        entries.append(HistoryEntry(event.at, "event", event.actor, event.action, event.data))
    for review in doc.reviews:
        entries.append(HistoryEntry(review.created_at, "review", f"user:{users.get(review.user_id, '?')}",
                                    f"changed {review.field}", review))
    for example in session.scalars(select(TrainingExample).where(TrainingExample.document_id == doc.id)):
        entries.append(HistoryEntry(example.created_at, "example", f"user:{example.approver}",
                                    "training example " + ("(golden, held back)" if example.golden else "(training)"),
                                    example))
    order = {"attempt": 0, "event": 2, "review": 1, "example": 3}
    entries.sort(key=lambda e: (e.at, order[e.kind]))
    return entries
