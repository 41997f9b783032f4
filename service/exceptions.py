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

    def __reduce__(self) -> tuple:
        # Pickled whole (detail and extras) when it crosses from a child process (service.sandbox).
        return (_restore, (type(self), self.__dict__))

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    @property
    def headers(self) -> dict[str, str]:
        """Response headers this error answers with (none by default)."""
        return {}

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


def _restore(cls: type[DocketError], state: dict[str, Any]) -> DocketError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("detail"))
    error.__dict__.update(state)
    return error


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


class PdfTooLarge(PayloadTooLarge):
    """Small on the wire, huge when read: a decompression bomb, too much text, too much memory."""

    slug, title = "pdf-too-large", "The PDF expands beyond what is read"


class PdfTooComplex(UnreadableDocument):
    """Objects nested too deep, or a parse that ran past its time limit or crashed the parser."""

    slug, title = "pdf-too-complex", "The PDF is too complex to read safely"


class PageSizeOutOfRange(UnreadableDocument):
    slug, title = "page-size-out-of-range", "A page of the PDF has an impossible size"


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


class RateLimited(DocketError):
    """Too many requests with one API key in the current window; ``retry_after`` is in seconds."""

    status, slug, title = 429, "rate-limited", "Too many requests"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extra["retry_after"])}


# --- review ------------------------------------------------------------------


class ReviewConflict(DocketError):
    """A review action that the document's current state does not allow."""

    status, slug, title = 409, "review-conflict", "The document changed"


class ClaimedByOther(ReviewConflict):
    slug, title = "claimed", "Another reviewer holds this document"


class StaleReview(ReviewConflict):
    slug, title = "stale-review", "Someone else changed this document in the meantime"


class AlreadyDecided(ReviewConflict):
    slug, title = "already-decided", "This document has already been reviewed"


# --- models and training -----------------------------------------------------


class RegistryConflict(DocketError):
    """A model registry change the registry's current state does not allow."""

    status, slug, title = 409, "registry-conflict", "The model registry does not allow this change"


class NothingToRollBack(RegistryConflict):
    slug, title = "nothing-to-roll-back", "There is no earlier model version to roll back to"


class ArtifactMismatch(RegistryConflict):
    """The model folder is gone or its files no longer hash to the registered SHA-256."""

    slug, title = "artifact-mismatch", "The model artifact does not match the registry"


class TrainingRunActive(DocketError):
    status, slug, title = 409, "training-run-active", "A training run is already queued or running"


# --- the service -------------------------------------------------------------


class ServiceUnavailable(DocketError):
    status, slug, title = 503, "service-unavailable", "A backing service is unavailable"


class StorageError(DocketError):
    status, slug, title = 500, "storage-error", "The file store failed"


# --- the frontier model ------------------------------------------------------
# A failed second opinion never fails a document: the job catches these and
# routes the document to review with ``code`` as the reason. Messages are
# written here, never copied from a provider's response, so no key or header
# can leak into logs or the API.


class FrontierError(DocketError):
    """The frontier model gave no usable answer. ``code`` is the machine-readable reason."""

    status, slug, title = 502, "frontier-failed", "The frontier model gave no usable answer"
    code = "frontier_error"

    def __init__(self, detail: str | None = None, input_tokens: int = 0, output_tokens: int = 0,
                 cost_usd: float = 0.0, **extra: Any) -> None:
        super().__init__(detail, **extra)
        # A call that answered badly was still billed: the caller records it.
        self.input_tokens, self.output_tokens, self.cost_usd = input_tokens, output_tokens, cost_usd


class FrontierTimeout(FrontierError):
    title, code = "The frontier model timed out", "timeout"


class FrontierUnavailable(FrontierError):
    """Unreachable, rate limited or failing after every retry."""

    title, code = "The frontier model is unavailable", "unavailable"


class FrontierCircuitOpen(FrontierUnavailable):
    title, code = "The frontier circuit is open after repeated failures", "circuit_open"


class FrontierRejected(FrontierError):
    """The provider refused the request (4xx other than 408/409/429): key, model name or schema."""

    title, code = "The frontier model refused the request", "rejected"


class FrontierInvalidAnswer(FrontierError):
    """The answer is not JSON, not an object, truncated or a refusal."""

    title, code = "The frontier answer does not parse", "invalid_answer"


class FrontierSchemaViolation(FrontierInvalidAnswer):
    """The answer parses but does not validate against the document schema after normalisation."""

    title, code = "The frontier answer violates the schema", "schema_violation"


class FrontierConfigError(DocketError):
    """The frontier settings are incomplete (a provider without a model, a model without a price)."""

    status, slug, title = 500, "frontier-config", "The frontier model is misconfigured"


# --- webhooks ----------------------------------------------------------------


class WebhookRefused(DocketError):
    """Docket will not send to this URL: not http(s), or a host the SSRF guard refuses (see service.webhooks.guard)."""

    status, slug, title = 422, "webhook-refused", "Docket does not send webhooks to this address"


class WebhookDeliveryFailed(DocketError):
    """The receiver could not be reached or did not answer 2xx; raised inside the job so that rq retries it."""

    status, slug, title = 502, "webhook-failed", "The webhook receiver did not accept the event"
