"""Keep secrets out of logs: API keys, ``Authorization`` values and every registered secret value.

:class:`RedactSecrets` is a ``logging.Filter`` that rewrites a record's
message, traceback and stack in place. :func:`install` applies it to every
record the process creates (through the log record factory), so handlers
added later — pytest's, gunicorn's, rq's — get redacted records too; a
filter on one handler would miss them. The app and the ``docket`` command
call :func:`install` with their settings, which registers the frontier API
key, the session secret and the passwords in the database and Redis URLs.

Other secrets (a client's webhook signing secret, say) are registered with
:func:`register_secret` where they are loaded; from then on their value is
replaced wherever it appears in a log line.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.settings import Settings

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words

# A Docket API key (dk_<prefix>_<secret>, or anything shaped like one).
API_KEY = re.compile(r"dk_[A-Za-z0-9_\-]{6,}")
# An Authorization (or API-key) header's value, as a header line, a dict repr or JSON.
HEADER = re.compile(
    r"""(?ix)
    ( ["']? (?:proxy-)?authorization ["']? \s* [:=] \s* ["']?      # Authorization: / 'authorization': '
    | ["']? x-api-key ["']? \s* [:=] \s* ["']? )
    ( (?:bearer|basic|token)\s+ )?                                 # the scheme stays readable
    [^\s"',}\]]+
    """
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Redact *value* from every log line from now on (values under 6 characters are ignored)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """*text* with API keys, Authorization values and registered secrets replaced by ``[redacted]``."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: one secret may contain another
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = HEADER.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{REDACTED}", text)
    return API_KEY.sub("dk_" + REDACTED, text)


class RedactSecrets(logging.Filter):
    """Rewrites a record so that no handler or formatter sees a secret; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_filter = RedactSecrets()
_installed = False


def install(settings: Settings | None = None) -> None:
    """Redact every log record this process creates; register the secrets *settings* hold. Idempotent."""
    global _installed
    if settings is not None:
        register_settings(settings)
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _filter.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


def register_settings(settings: Settings) -> None:
    register_secret(settings.frontier_api_key.get_secret_value())
    register_secret(settings.secret_key)
    for url in (settings.database_url, settings.redis_url):
        register_secret(url_password(url))


def url_password(url: str) -> str | None:
    if not url:
        return None
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None
