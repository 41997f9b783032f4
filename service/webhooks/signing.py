"""Webhook signatures: HMAC-SHA256 over ``f"{timestamp}.{body}"`` with the client's secret.

Every delivery carries four headers::

    Docket-Webhook-Id: 3f2c…            the event's id, the same on every retry (deduplicate on it)
    Docket-Webhook-Event: document.completed
    Docket-Webhook-Timestamp: 1764670000   Unix seconds, when this attempt was signed
    Docket-Webhook-Signature: v1=<hex>     hex HMAC-SHA256(secret, f"{timestamp}.{body}")

A receiver recomputes the HMAC over the raw body bytes it got and refuses a
timestamp more than :data:`TOLERANCE_S` seconds from its own clock, so a
captured request cannot be replayed later. :func:`verify_signature` does
both; it uses only the standard library, so a receiver can copy it as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "Docket-Webhook-Id"
EVENT_HEADER = "Docket-Webhook-Event"
TIMESTAMP_HEADER = "Docket-Webhook-Timestamp"
SIGNATURE_HEADER = "Docket-Webhook-Signature"
SCHEME = "v1"
TOLERANCE_S = 300  # the replay window: five minutes either side of the receiver's clock


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1=<hex>`` signature of *body* sent at *timestamp*."""
    message = str(int(timestamp)).encode() + b"." + body
    return f"{SCHEME}=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, delivery_id: str, event: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers that identify and sign one delivery attempt."""
    return {
        ID_HEADER: delivery_id,
        EVENT_HEADER: event,
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None,
                     tolerance: int = TOLERANCE_S) -> bool:
    """True when *body* was signed with *secret* no more than *tolerance* seconds from *now*.

    *headers* is any mapping with case-insensitive lookup or the exact header
    names; *body* the raw bytes as received (not re-serialised JSON). The
    signature header may list several space-separated ``v1=`` values (one
    per secret while a secret is being rotated); any one matching is enough.
    """
    lookup = {str(k).lower(): v for k, v in headers.items()}
    timestamp = lookup.get(TIMESTAMP_HEADER.lower(), "")
    signatures = lookup.get(SIGNATURE_HEADER.lower(), "").split()
    if not timestamp.isdigit() or not signatures:
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signatures)
