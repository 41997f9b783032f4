"""Logging for every Docket process: one line per record, as text for people or JSON for machines.

``DOCKET_LOG_FORMAT=json`` writes one JSON object per line (``ts``, ``level``,
``logger``, ``message`` and, where known, ``request_id``, ``document_id`` and
``job_id``); ``text`` (the default) writes the same facts as a readable line.
The ids live in context variables: the API sets the request id for each
request (:mod:`service.observability`), the worker sets all three for each job
(:class:`service.tasks.DocketWorker`), so every line logged while a document
is handled names it, whichever module logs it.

The API (``wsgi.py``), ``docket worker`` and ``docket run`` call
:func:`configure_logging`; gunicorn's own lines are formatted the same way by
``service/gunicorn_conf.py``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "log_context",
    "make_formatter",
    "request_id",
]

request_id: ContextVar[str | None] = ContextVar("docket_request_id", default=None)
document_id: ContextVar[str | None] = ContextVar("docket_document_id", default=None)
job_id: ContextVar[str | None] = ContextVar("docket_job_id", default=None)
CONTEXT_FIELDS = {"request_id": request_id, "document_id": document_id, "job_id": job_id}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # rq colours its lines on a terminal
# The attributes every LogRecord has; anything else came in through ``extra=`` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def current_request_id() -> str | None:
    return request_id.get()


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Set some of request_id, document_id, job_id for the lines logged inside the block."""
    tokens = [(CONTEXT_FIELDS[name], CONTEXT_FIELDS[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def _context(record: logging.LogRecord) -> dict[str, str]:
    """The ids known for a record: passed with ``extra=`` or from the context variables."""
    out = {}
    for name, var in CONTEXT_FIELDS.items():
        value = getattr(record, name, None) or var.get()
        if value:
            out[name] = str(value)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, the ids, any ``extra=`` fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _ANSI.sub("", record.getMessage()),
        }
        entry.update(_context(record))
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and key not in CONTEXT_FIELDS:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` with the known ids appended as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={v}" for k, v in _context(record).items())
        if not ids:
            return line
        head, sep, tail = line.partition("\n")  # ids on the first line, before a traceback
        return f"{head} [{ids}]{sep}{tail}"


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"log format must be 'text' or 'json', not {fmt!r}")


class _DocketHandler(logging.StreamHandler):
    """The root handler :func:`configure_logging` installs (found again and replaced on a second call)."""


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    """Send every logger's records to stderr in *fmt*.

    Calling it again replaces the handler, never stacks one. A root logger
    someone else has set up (a test runner, an app embedding Docket) is left
    alone, as :func:`logging.basicConfig` leaves it.
    """
    make_formatter(fmt)  # an unknown format fails here, even where nothing is configured
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _DocketHandler)]
    if len(ours) < len(root.handlers):
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = _DocketHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level.upper())
