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

from service.reviews.claims import claim, claim_active, load_for_review, release
from service.reviews.decisions import approve, bulk_approve, is_golden, reject
from service.reviews.history import HistoryEntry, history
from service.reviews.queue import CLAIM_FILTERS, SORTS, Queue, QueueItem, list_queue, next_document_id
from service.reviews.reading import REASON_LABELS, candidates, dismissable, lowest_confidence, reason_label

__all__ = [
    "CLAIM_FILTERS",
    "REASON_LABELS",
    "SORTS",
    "HistoryEntry",
    "Queue",
    "QueueItem",
    "approve",
    "bulk_approve",
    "candidates",
    "claim",
    "claim_active",
    "dismissable",
    "history",
    "is_golden",
    "list_queue",
    "load_for_review",
    "lowest_confidence",
    "next_document_id",
    "reason_label",
    "reject",
    "release",
]
