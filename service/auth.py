"""API keys: ``Authorization: Bearer dk_<prefix>_<secret>``, stored as a SHA-256, with scopes.

Keys carry 256 random bits, so a plain SHA-256 is as safe to store as a slow
password hash and costs nothing per request; the prefix finds the row without
comparing against every key. The ``admin`` scope includes every other one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.exceptions import Forbidden, InvalidRequest, Unauthorized
from service.models import SCOPES, ApiClient, ApiKey

KEY_PREFIX = "dk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(scopes: str | Iterable[str]) -> list[str]:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    out = sorted({s.strip() for s in items if s.strip()})
    unknown = [s for s in out if s not in SCOPES]
    if unknown or not out:
        raise InvalidRequest(f"Scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}.")
    return out


def create_api_key(session: Session, client_name: str, scopes: str | Iterable[str]) -> tuple[str, ApiKey]:
    """Create a key (and its client if new); return the key in clear, which is never stored."""
    scope_list = parse_scopes(scopes)
    client = session.scalar(select(ApiClient).where(ApiClient.name == client_name))
    if client is None:
        client = ApiClient(name=client_name)
        session.add(client)
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(client=client, prefix=prefix, key_hash=hash_key(key), scopes=scope_list)
    session.add(api_key)
    session.commit()
    return key, api_key


def authenticate(session: Session, authorization: str | None) -> ApiKey:
    """The active key named by an ``Authorization`` header, or :class:`Unauthorized`."""
    if not authorization:
        raise Unauthorized("Send an API key: Authorization: Bearer <key>.")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX):
        raise Unauthorized("Send an API key: Authorization: Bearer <key>.")
    prefix = token[len(KEY_PREFIX) :].partition("_")[0]
    api_key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if api_key is None or not hmac.compare_digest(api_key.key_hash, hash_key(token)):
        raise Unauthorized("The API key is not valid.")
    if api_key.revoked_at is not None or not api_key.client.active:
        raise Unauthorized("The API key has been revoked.")
    return api_key


def require_scope(api_key: ApiKey, scope: str) -> None:
    if scope not in api_key.scopes and "admin" not in api_key.scopes:
        raise Forbidden(f"This key lacks the {scope!r} scope.", required_scope=scope)

