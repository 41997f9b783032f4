"""The v1 endpoints for an API client's own webhook: read, set (and rotate its secret), remove, recent deliveries.

A webhook belongs to the client, not to one key. Managing it needs a scope
that earns events: ``submit`` (document events) or ``train`` (promotions);
``admin`` includes both. The signing secret is in the answer only when it
was just made: the first PUT, or a PUT with ``rotate_secret``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, current_app, g, request
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from spectree import Response as SpecResponse

from service import auth
from service.api.views import ERRORS, _resp, bp, parse, spec
from service.auth import ApiKey
from service.db import get_session
from service.exceptions import Forbidden, NotFound
from service.models import ApiClient
from service.webhooks import registration
from service.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, TOLERANCE_S

MANAGING_SCOPES = ("submit", "train", "admin")


class WebhookIn(BaseModel):
    """Where to send this client's events."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="An http(s) URL; it must resolve to a public address when events are sent.",
                     min_length=1, max_length=2000)
    rotate_secret: StrictBool = Field(default=False, description="Make a new signing secret (answered this once).")


class WebhookOut(BaseModel):
    """This client's webhook."""

    url: str
    events: list[str] = Field(description="The events this client is sent.")
    secret: str | None = Field(
        default=None,
        description=f"The signing secret, only when it was just made. Each delivery carries {TIMESTAMP_HEADER} and "
                    f"{SIGNATURE_HEADER}: v1=hex(HMAC-SHA256(secret, timestamp + '.' + body)); refuse timestamps "
                    f"more than {TOLERANCE_S} s old.",
    )


class DeliveryOut(BaseModel):
    """One delivery attempt."""

    delivery_id: str = Field(description="The event's Docket-Webhook-Id, the same on every retry.")
    event: str
    url: str
    attempt: int
    outcome: str = Field(description="delivered | retrying | failed | refused")
    status_code: int | None
    error: str | None
    duration_ms: float
    created_at: datetime


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


class DeliveryQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=500)


def webhook_key() -> ApiKey:
    """The request's key, if it has a scope that earns events (submit, train or admin)."""
    key = auth.authenticate(get_session(), request.headers.get("Authorization"))
    if not set(key.scopes) & set(MANAGING_SCOPES):
        raise Forbidden("Managing a webhook needs the submit or the train scope.", required_scope="submit")
    g.api_key = key
    return key


def webhook_json(client: ApiClient, secret: str | None = None) -> dict[str, Any]:
    body = {"url": client.webhook_url, "events": registration.events_for(get_session(), client), "secret": secret}
    return WebhookOut.model_validate(body).model_dump(mode="json")


def configured(client: ApiClient) -> ApiClient:
    if not client.webhook_url:
        raise NotFound("This client has no webhook; PUT /v1/webhook with a URL sets one.")
    return client


@bp.get("/v1/webhook")
@spec.validate(resp=_resp(HTTP_200=WebhookOut), tags=["webhooks"], skip_validation=True)
def get_webhook() -> Response:
    """This client's webhook URL and the events it is sent (submit or train scope); the secret is not shown."""
    key = webhook_key()
    return current_app.json.response(webhook_json(configured(key.client)))


@bp.put("/v1/webhook")
@spec.validate(json=WebhookIn, resp=_resp(HTTP_200=WebhookOut, HTTP_201=WebhookOut), tags=["webhooks"],
               skip_validation=True)
def put_webhook() -> Response:
    """Set this client's webhook URL (submit or train scope).

    Answers 201 with the new signing secret when the client had no webhook,
    200 otherwise; with ``rotate_secret`` the answer carries a new secret and
    the old one stops signing at once.
    """
    key = webhook_key()
    body = parse(WebhookIn, request.get_json(silent=True))
    client = key.client
    created = client.webhook_url is None
    secret = registration.set_webhook(get_session(), client, body.url, f"client:{client.name}",
                                      rotate_secret=body.rotate_secret)
    resp = current_app.json.response(webhook_json(client, secret))
    resp.status_code = 201 if created else 200
    return resp


@bp.delete("/v1/webhook")
@spec.validate(resp=SpecResponse("HTTP_204", **ERRORS), tags=["webhooks"], skip_validation=True)
def delete_webhook() -> Response:
    """Stop sending this client events (submit or train scope); deliveries still queued are dropped."""
    key = webhook_key()
    registration.remove_webhook(get_session(), key.client, f"client:{key.client.name}")
    return Response(status=204)


@bp.get("/v1/webhook/deliveries")
@spec.validate(query=DeliveryQuery, resp=_resp(HTTP_200=DeliveryList), tags=["webhooks"], skip_validation=True)
def list_deliveries() -> Response:
    """This client's latest delivery attempts, newest first: outcome, HTTP status or error, duration."""
    key = webhook_key()
    query = parse(DeliveryQuery, request.args.to_dict())
    rows = registration.recent_deliveries(get_session(), key.client, query.limit)
    items = [DeliveryOut.model_validate(row, from_attributes=True).model_dump(mode="json") for row in rows]
    return current_app.json.response({"items": items})
