"""Every error Docket raises on purpose, in one place.

Each :class:`DocketError` knows the HTTP status and the RFC 9457 problem
``type`` it answers with, so the API turns any of them into a problem JSON
body without a table of special cases. The stages (ingest, extract, validate)
raise these too; they carry no Flask.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://docket.dev/problems/"


class DocketError(Exception):
    """Base class: an error with an HTTP status and a problem type."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


# --- the request -------------------------------------------------------------


class BadRequest(DocketError):
    status, slug, title = 400, "bad-request", "Bad request"


class EmptyDocument(BadRequest):
    slug, title = "empty-document", "The document is empty"


class InvalidRequest(DocketError):
    status, slug, title = 422, "invalid-request", "The request is not valid"


class UnknownDocType(DocketError):
    status, slug, title = 422, "unknown-doc-type", "Unknown document type"


class UnreadableDocument(DocketError):
    status, slug, title = 422, "unreadable-document", "The document cannot be read"


class NotAPdf(UnreadableDocument):
    slug, title = "not-a-pdf", "The file is not a PDF"


class EncryptedPdf(UnreadableDocument):
    slug, title = "encrypted-pdf", "The PDF is encrypted"


class PayloadTooLarge(DocketError):
    status, slug, title = 413, "payload-too-large", "The document is too large"


class TooManyPages(PayloadTooLarge):
    slug, title = "too-many-pages", "The document has too many pages"


class UnsupportedMediaType(DocketError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class IdempotencyConflict(DocketError):
    status, slug, title = 409, "idempotency-conflict", "Idempotency key reused with a different request"


# --- who is asking -----------------------------------------------------------


class Unauthorized(DocketError):
    status, slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(DocketError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(DocketError):
    status, slug, title = 404, "not-found", "Not found"


# --- the service -------------------------------------------------------------


class ServiceUnavailable(DocketError):
    status, slug, title = 503, "service-unavailable", "A backing service is unavailable"


class StorageError(DocketError):
    status, slug, title = 500, "storage-error", "The file store failed"
