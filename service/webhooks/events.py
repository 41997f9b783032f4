"""Webhook events: what happened, who hears of it, and queueing it only once it is committed.

The code where something happens (``process_document``, a review decision,
``registry.promote``) calls one of :func:`document_finished`,
:func:`document_reviewed` or :func:`model_promoted` inside its transaction.
The recipients are read in that transaction and the event is staged on the
SQLAlchemy session; it goes to the ``notifications`` queue only after the
commit (a rollback drops it), so no receiver hears of something that did not
happen. Queueing never fails the change itself: with Redis down the event is
logged as lost and the document, review or promotion stands.

Who hears what:

- ``document.completed`` (read straight through), ``document.needs_review``
  (routed to review) and ``document.reviewed`` (approved or rejected by a
  person): the API client that submitted the document.
- ``model.promoted``: every client with an unrevoked key that has the
  ``train`` or ``admin`` scope — the clients that may train and promote.

Each recipient gets its own delivery with its own id (``Docket-Webhook-Id``).
A session learns where to queue through :func:`attach`, once per database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue, Retry
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from service.db import Database
from service.models import ApiClient, ApiKey, Document, ModelVersion, new_id, utcnow
from service.queue import NOTIFICATIONS, connect_redis
from service.routing import STRAIGHT_THROUGH

log = logging.getLogger(__name__)

DOCUMENT_COMPLETED = "document.completed"
DOCUMENT_NEEDS_REVIEW = "document.needs_review"
DOCUMENT_REVIEWED = "document.reviewed"
MODEL_PROMOTED = "model.promoted"
EVENTS = (DOCUMENT_COMPLETED, DOCUMENT_NEEDS_REVIEW, DOCUMENT_REVIEWED, MODEL_PROMOTED)
MODEL_EVENT_SCOPES = ("train", "admin")  # keys whose clients hear of promotions

# The rq job, named by path: the job module runs on workers and imports the worker runtime.
DELIVER_JOB = "service.webhooks.delivery.deliver"
PENDING = "docket.webhooks.pending"  # Session.info key: events staged in the open transaction
NOTIFIER = "docket.webhooks.notifier"  # Session.info key: where this session's events are queued


@dataclass(frozen=True)
class Pending:
    """One event for one client, with its body fixed now so every retry sends the same bytes."""

    delivery_id: str
    client_id: int
    event: str
    body: str


# --- what happened -----------------------------------------------------------


def document_data(doc: Document) -> dict[str, Any]:
    return {
        "id": doc.id,
        "doc_type": doc.doc_type,
        "status": doc.status,
        "route": doc.route,
        "reasons": list(doc.route_reasons or []),
        "url": f"/v1/documents/{doc.id}",
    }


def document_finished(session: Session, doc: Document) -> None:
    """Extraction is done: ``document.completed`` if it went straight through, else ``document.needs_review``."""
    name = DOCUMENT_COMPLETED if doc.route == STRAIGHT_THROUGH else DOCUMENT_NEEDS_REVIEW
    stage(session, name, document_data(doc), [doc.client_id] if doc.client_id else [])


def document_reviewed(session: Session, doc: Document, decision: str, reason: str | None = None) -> None:
    """A person approved or rejected the document (*decision* is ``approved`` or ``rejected``)."""
    data = {**document_data(doc), "decision": decision, "reason": reason}
    stage(session, DOCUMENT_REVIEWED, data, [doc.client_id] if doc.client_id else [])


def model_promoted(session: Session, entry: ModelVersion, reason: str) -> None:
    """A model version is now served, to every client whose keys may train or promote."""
    data = {"version": entry.version, "previous": entry.previous, "reason": reason,
            "activated_at": entry.activated_at.isoformat() if entry.activated_at else None}
    stage(session, MODEL_PROMOTED, data, model_audience(session))


def model_audience(session: Session) -> list[int]:
    """Clients with an unrevoked key carrying the train or admin scope."""
    rows = session.execute(
        select(ApiKey.client_id, ApiKey.scopes).join(ApiClient).where(ApiKey.revoked_at.is_(None), ApiClient.active)
    )
    return sorted({client_id for client_id, scopes in rows if set(scopes or ()) & set(MODEL_EVENT_SCOPES)})


# --- staging and queueing ----------------------------------------------------


def stage(session: Session, event: str, data: dict[str, Any], client_ids: Iterable[int]) -> list[Pending]:
    """Stage *event* for each of *client_ids* that has a webhook; it is queued when *session* commits."""
    ids = sorted(set(client_ids))
    if not ids:
        return []
    recipients = session.scalars(
        select(ApiClient.id).where(ApiClient.id.in_(ids), ApiClient.active, ApiClient.webhook_url.is_not(None))
    ).all()
    staged = []
    for client_id in recipients:
        delivery_id = new_id()
        body = json.dumps({"id": delivery_id, "type": event, "created_at": utcnow().isoformat(), "data": data},
                          separators=(",", ":"), default=str)
        staged.append(Pending(delivery_id, client_id, event, body))
    if staged and NOTIFIER not in session.info:
        log.warning("webhook %s for clients %s not sent: this database session has no queue attached",
                    event, [p.client_id for p in staged])
        return []
    session.info.setdefault(PENDING, []).extend(staged)
    return staged


class Notifier:
    """Queues committed events on the ``notifications`` queue, with exponential backoff for the retries."""

    def __init__(self, settings: Settings, connection: Redis | Callable[[], Redis]) -> None:
        self.settings = settings
        self._connection = connection if callable(connection) else (lambda: connection)

    def retry(self) -> Retry | None:
        intervals = list(self.settings.webhook_retry_intervals_s)
        return Retry(max=len(intervals), interval=intervals) if intervals else None

    def send(self, pending: list[Pending]) -> None:
        """Enqueue each event; a failure is logged, never raised: the change it reports is already committed."""
        for item in pending:
            try:
                Queue(NOTIFICATIONS, connection=self._connection()).enqueue(
                    DELIVER_JOB,
                    item.delivery_id,
                    item.client_id,
                    item.event,
                    item.body,
                    job_id=f"webhook-{item.delivery_id}",
                    retry=self.retry(),
                    job_timeout=int(self.settings.webhook_timeout_s) + 30,
                    result_ttl=24 * 3600,
                    failure_ttl=7 * 24 * 3600,
                    description=f"webhook {item.event} {item.delivery_id} to client {item.client_id}",
                )
            except Exception as exc:  # noqa: BLE001 - Redis down, a bad URL in REDIS_URL: never the caller's problem
                log.warning("webhook %s %s for client %s not queued (%s: %s); the event is lost",
                            item.event, item.delivery_id, item.client_id, type(exc).__name__, exc)


def _after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING, None)
    notifier = session.info.get(NOTIFIER)
    if pending and notifier is not None:
        notifier.send(pending)


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


def attach(database: Database, settings: Settings, connection: Redis | Callable[[], Redis]) -> Database:
    """Queue the webhook events staged in *database*'s sessions on *connection* after each commit."""
    database.sessionmaker.configure(info={NOTIFIER: Notifier(settings, connection)})
    if not sa_event.contains(database.sessionmaker, "after_commit", _after_commit):
        sa_event.listen(database.sessionmaker, "after_commit", _after_commit)
        sa_event.listen(database.sessionmaker, "after_rollback", _after_rollback)
    return database


def worker_connection(settings: Settings) -> Callable[[], Redis]:
    """One connection to the settings' Redis, made on first use.

    Not the running job's own connection: which Redis an event goes to must
    follow from the settings alone, never from whatever job context the
    calling code happens to run in.
    """
    made: list[Redis] = []

    def connection() -> Redis:
        if not made:
            made.append(connect_redis(settings))
        return made[0]

    return connection
