"""The rq job that delivers one webhook event: sign, POST once, record the attempt, raise to be retried.

The client's URL and secret are read from the database at each attempt (the
secret never travels through Redis, and a rotated secret or a removed
webhook takes effect on the next retry). The POST goes to the address
:func:`service.webhooks.guard.resolve_target` vetted, with a timeout and
without following redirects. Every attempt becomes a
:class:`~service.models.WebhookDelivery` row. A refused URL is recorded and
not retried; a failure (no connection, a timeout, an answer other than 2xx)
is recorded and raised, and rq retries it after the next backoff interval.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import urllib3
from rq import get_current_job
from sqlalchemy import func, select

from service import redact
from service.exceptions import WebhookDeliveryFailed, WebhookRefused
from service.models import ApiClient, WebhookDelivery
from service.tasks import get_runtime
from service.webhooks.guard import Target, resolve_target
from service.webhooks.signing import signed_headers

log = logging.getLogger(__name__)

DELIVERED, RETRYING, FAILED, REFUSED = "delivered", "retrying", "failed", "refused"
USER_AGENT = "Docket-Webhooks/1"


def post(target: Target, body: bytes, headers: dict[str, str], timeout_s: float, ca_certs: str | None = None) -> int:
    """POST *body* to *target*'s vetted addresses, the next one only if one refuses the connection; the status.

    A redirect is an answer like any other: it is not followed. TLS is
    verified against *target*'s host name (sent as SNI), not the address;
    *ca_certs* replaces the system's trusted certificates.
    """
    refused: list[urllib3.exceptions.NewConnectionError] = []
    for address in target.addresses:
        try:
            return post_to(target, address, body, headers, timeout_s, ca_certs)
        except urllib3.exceptions.NewConnectionError as exc:
            refused.append(exc)
    raise refused[-1]


def post_to(target: Target, address: str, body: bytes, headers: dict[str, str], timeout_s: float,
            ca_certs: str | None) -> int:
    options: dict[str, Any] = {"timeout": urllib3.Timeout(connect=timeout_s, read=timeout_s), "retries": False}
    if target.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address, target.port, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs, server_hostname=target.host,
            assert_hostname=target.host, **options)
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, **options)
    request_headers = {"Host": target.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                       **headers}
    with pool:
        response = pool.urlopen("POST", target.path, body=body, headers=request_headers, redirect=False,
                                retries=False, preload_content=False, assert_same_host=False)
        status = response.status
        response.close()  # the body is not read: a receiver's answer is its status
    return status


def deliver(delivery_id: str, client_id: int, event: str, body: str) -> dict[str, Any]:
    """One delivery attempt of one event to one client (an rq job on the notifications queue)."""
    runtime = get_runtime()
    settings = runtime.settings
    job = get_current_job()
    retries_left = (job.retries_left or 0) if job is not None else 0
    with runtime.db.session() as session:
        client = session.get(ApiClient, client_id)
        if client is None or not client.active or not client.webhook_url or not client.webhook_secret:
            log.info("webhook %s %s: client %s no longer has a webhook; not sent", event, delivery_id, client_id)
            return {"delivery_id": delivery_id, "outcome": "dropped"}
        url, secret = client.webhook_url, client.webhook_secret
        redact.register_secret(secret)  # whatever goes wrong below, no log line shows it
        attempt = 1 + session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.delivery_id == delivery_id))

    payload = body.encode()
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    host = "?"
    try:
        target = resolve_target(url, settings.webhook_allow_private)
        host = target.host
        headers = signed_headers(secret, delivery_id, event, payload, int(time.time()))
        ca_file = str(settings.webhook_ca_file) if settings.webhook_ca_file else None
        status = post(target, payload, headers, settings.webhook_timeout_s, ca_file)
        if not 200 <= status < 300:
            error = f"the receiver answered HTTP {status}"
        outcome = DELIVERED if error is None else (RETRYING if retries_left else FAILED)
    except WebhookRefused as exc:
        outcome, error = REFUSED, exc.detail
    except (OSError, urllib3.exceptions.HTTPError) as exc:  # socket.gaierror is an OSError: DNS may recover
        reason = ("does not resolve" if isinstance(exc, socket.gaierror) else
                  "could not be reached" if isinstance(exc, urllib3.exceptions.NewConnectionError) else
                  "did not answer in time" if isinstance(exc, urllib3.exceptions.TimeoutError) else
                  "could not be reached")
        outcome, error = (RETRYING if retries_left else FAILED), f"{type(exc).__name__}: the receiver {reason}: {exc}"
    duration_ms = round((time.perf_counter() - started) * 1000.0, 2)

    with runtime.db.session() as session:
        session.add(WebhookDelivery(delivery_id=delivery_id, client_id=client_id, event=event, url=url,
                                    attempt=attempt, outcome=outcome, status_code=status, error=error,
                                    duration_ms=duration_ms))
        session.commit()
    log.info("webhook %s %s to client %s (%s): attempt %d %s%s", event, delivery_id, client_id, host, attempt,
             outcome, f" ({error})" if error else "")
    if outcome in (RETRYING, FAILED):
        raise WebhookDeliveryFailed(f"webhook {delivery_id} attempt {attempt}: {error}")
    return {"delivery_id": delivery_id, "attempt": attempt, "outcome": outcome, "status_code": status}
