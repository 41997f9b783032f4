"""Approve, reject, bulk-approve: what a person decided, written with its audit trail and training example."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.doctypes import DocumentType
from service.exceptions import InvalidRequest, NotFound, ReviewConflict, StaleReview
from service.models import (
    APPROVED,
    OPEN,
    REJECTED,
    AuditEvent,
    ExtractionAttempt,
    Review,
    ReviewTask,
    TrainingExample,
    User,
    utcnow,
)
from service.reviews.claims import check_current, claim, compare_and_set, load_for_review
from service.reviews.reading import actor_of, dismissable, same_value
from service.validate import validate
from service.webhooks import events as webhook_events


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
    bulk: bool = False,
) -> TrainingExample:
    """Store the approved values, the changes, the audit trail and the training example."""
    doc, task = load_for_review(session, document_id)
    task = check_current(session, doc, task, user, version, attempt_id)
    shown = doc.latest_extraction.fields if doc.latest_extraction else {}
    fields, changes, origins = human_fields(doc_type, shown, values)
    now = utcnow()
    if not compare_and_set(session, task, ReviewTask.state == OPEN, ReviewTask.claimed_by_id == user.id,
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
            "bulk": bulk,
        },
    ))
    webhook_events.document_reviewed(session, doc, APPROVED)
    session.commit()
    return example


def reject(session: Session, document_id: str, user: User, *, version: int, attempt_id: int | None,
           reason: str) -> None:
    """Take the document out of the queue with the reviewer's reason (unreadable, wrong type, …)."""
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidRequest("Say why the document is rejected.")
    doc, task = load_for_review(session, document_id)
    task = check_current(session, doc, task, user, version, attempt_id)
    if not compare_and_set(session, task, ReviewTask.state == OPEN, ReviewTask.claimed_by_id == user.id,
                            state=REJECTED, version=task.version + 1, decided_by_id=user.id, decided_at=utcnow(),
                            reject_reason=reason, claimed_by_id=None, claimed_until=None):
        session.rollback()
        raise StaleReview("Someone else changed this document while you were saving; nothing was saved.")
    session.add(AuditEvent(actor=actor_of(user), action="review.rejected", document_id=doc.id,
                           data={"reason": reason}))
    webhook_events.document_reviewed(session, doc, REJECTED, reason)
    session.commit()


def bulk_approve(session: Session, doc_types: dict[str, DocumentType], document_ids: list[str], user: User, *,
                 threshold: float, claim_minutes: int, golden_share: float) -> tuple[list[str], dict[str, str]]:
    """Approve, unchanged, each document that is still :func:`dismissable`; say why the others were not."""
    approved: list[str] = []
    refused: dict[str, str] = {}
    for document_id in dict.fromkeys(document_ids):
        try:
            doc, _ = load_for_review(session, document_id)
            if not dismissable(doc, threshold) or doc.doc_type not in doc_types:
                refused[document_id] = "it needs a person: a field is below threshold or a rule failed"
                continue
            task = claim(session, document_id, user, claim_minutes)
            attempt = doc.latest_extraction
            values = {name: result.get("value") for name, result in attempt.fields.items()}
            approve(session, doc_types[doc.doc_type], document_id, user, version=task.version, attempt_id=attempt.id,
                    values=values, golden_share=golden_share, bulk=True)
            approved.append(document_id)
        except (ReviewConflict, NotFound) as exc:
            session.rollback()
            refused[document_id] = exc.detail
    return approved, refused
