"""Claims: a document locked to one reviewer for a while, changed only by compare-and-set on its version."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.exceptions import AlreadyDecided, ClaimedByOther, NotFound, StaleReview
from service.models import DONE, OPEN, AuditEvent, Document, ReviewTask, User, utcnow
from service.reviews.queue import claim_active
from service.reviews.reading import actor_of
from service.routing import REVIEW


def load_for_review(session: Session, document_id: str) -> tuple[Document, ReviewTask | None]:
    doc = session.get(Document, document_id)
    if doc is None or doc.route != REVIEW or doc.status != DONE:
        raise NotFound(f"No document {document_id} awaits review.")
    return doc, session.get(ReviewTask, document_id)


def compare_and_set(session: Session, task: ReviewTask, *guards, **values: Any) -> bool:
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
    ok = compare_and_set(
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
    if compare_and_set(session, task, ReviewTask.claimed_by_id == user.id, claimed_by_id=None, claimed_until=None):
        session.add(AuditEvent(actor=actor_of(user), action="review.released", document_id=document_id, data={}))
    session.commit()


def check_current(session: Session, doc: Document, task: ReviewTask | None, user: User, version: int,
                   attempt_id: int | None) -> ReviewTask:
    """Refuse a decision made on a version of the document that is no longer current."""
    if task is None:
        raise StaleReview("Claim this document before saving it.")
    session.refresh(task)
    if task.state != OPEN:
        raise AlreadyDecided(f"This document was {task.state} already; your changes were not saved.")
    latest = doc.latest_extraction
    if task.version != version or (latest.id if latest else None) != attempt_id:
        holder = session.get(User, task.claimed_by_id) if task.claimed_by_id not in (None, user.id) else None
        now_held = f" {holder.email} holds it now." if holder is not None else ""
        raise StaleReview("Someone else changed this document since you opened it; your changes were not saved."
                          f"{now_held} Reload it to see the current version.")
    if task.claimed_by_id is not None and task.claimed_by_id != user.id:
        raise_claimed(session, task)
    if task.claimed_by_id is None:
        raise StaleReview("You no longer hold this document; claim it again before saving.")
    return task
