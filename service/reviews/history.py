"""A document's history: every attempt, event, change and training example, oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import AuditEvent, Document, TrainingExample, User


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
