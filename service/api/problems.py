"""RFC 9457 problem responses for every error the app answers with, expected or not."""

from __future__ import annotations

import logging

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from service.exceptions import PROBLEM_BASE, DocketError
from service.logs import current_request_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


def problem_response(body: dict, headers: dict[str, str] | None = None) -> Response:
    """The problem as JSON, with the request's id (an RFC 9457 extension member) to quote when reporting it."""
    if current_request_id():
        body = {**body, "request_id": current_request_id()}
    resp = Response(json.dumps(body), status=body["status"], mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        resp.headers[name] = value
    return resp


def handle_docket_error(exc: DocketError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="docket"'} if exc.status == 401 else {}
    return problem_response(exc.to_problem(instance=request.path), {**headers, **exc.headers})


def handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    slug = (exc.name or "error").lower().replace(" ", "-")
    detail = exc.description or exc.name
    if status == 413:
        detail = "The request is larger than this server accepts; send a smaller document."
    body = {"type": PROBLEM_BASE + slug, "title": exc.name, "status": status, "detail": detail, "instance": request.path}
    resp = problem_response(body)
    if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
        resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
    return resp


def handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    body = {
        "type": PROBLEM_BASE + "internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "Something failed on our side; the request changed nothing. Try again later.",
        "instance": request.path,
    }
    return problem_response(body)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DocketError, handle_docket_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
