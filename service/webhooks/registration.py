"""A client's webhook: set its URL, rotate its signing secret, remove it, read its recent deliveries.

The secret is made here (``whsec_`` and 256 random bits) and returned only by
the call that makes it: setting a first URL or rotating. It is stored in
clear because signing needs it; nothing logs it and no API answer repeats it.
Every change is an audit event (without the secret).
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.exceptions import InvalidRequest, NotFound
from service.models import ApiClient, AuditEvent, WebhookDelivery
from service.webhooks.events import DOCUMENT_COMPLETED, DOCUMENT_NEEDS_REVIEW, DOCUMENT_REVIEWED, MODEL_PROMOTED
from service.webhooks.events import model_audience
from service.webhooks.guard import check_url

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def find_client(session: Session, name: str) -> ApiClient:
    client = session.scalar(select(ApiClient).where(ApiClient.name == name))
    if client is None:
        raise NotFound(f"No API client named {name!r}; `docket keys create --name {name}` makes one.")
    return client


def events_for(session: Session, client: ApiClient) -> list[str]:
    """The events *client* is sent: its documents' events, and promotions if its keys may train."""
    names = [DOCUMENT_COMPLETED, DOCUMENT_NEEDS_REVIEW, DOCUMENT_REVIEWED]
    return names + [MODEL_PROMOTED] if client.id in model_audience(session) else names


def set_webhook(session: Session, client: ApiClient, url: str, actor: str, rotate_secret: bool = False) -> str | None:
    """Point *client*'s webhook at *url*. Commits; returns the new secret if one was made, else None."""
    client.webhook_url = check_url(url)
    secret = None
    if client.webhook_secret is None or rotate_secret:
        client.webhook_secret = secret = new_secret()
    session.add(AuditEvent(actor=actor, action="webhook.set",
                           data={"client": client.name, "url": client.webhook_url, "new_secret": secret is not None}))
    session.commit()
    return secret


def rotate_secret(session: Session, client: ApiClient, actor: str) -> str:
    """Replace *client*'s signing secret; deliveries from now on, retries included, use the new one. Commits."""
    if not client.webhook_url:
        raise InvalidRequest(f"Client {client.name!r} has no webhook; set its URL first.")
    client.webhook_secret = new_secret()
    session.add(AuditEvent(actor=actor, action="webhook.secret_rotated", data={"client": client.name}))
    session.commit()
    return client.webhook_secret


def remove_webhook(session: Session, client: ApiClient, actor: str) -> None:
    """Stop sending *client* events; queued deliveries are dropped when they run. Commits."""
    if not client.webhook_url:
        raise NotFound(f"Client {client.name!r} has no webhook.")
    client.webhook_url = client.webhook_secret = None
    session.add(AuditEvent(actor=actor, action="webhook.removed", data={"client": client.name}))
    session.commit()


def recent_deliveries(session: Session, client: ApiClient, limit: int = 50) -> list[WebhookDelivery]:
    """*client*'s latest delivery attempts, newest first."""
    return list(session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.client_id == client.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
    ))
