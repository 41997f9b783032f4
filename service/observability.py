"""Flask hooks for every request: its id in and out, its latency in Prometheus, one log line.

The request id is the client's ``X-Request-Id`` when it is a sane token (1-128
characters from ``A-Z a-z 0-9 . _ : = + / -``), else a new one; it is echoed in
the response's ``X-Request-Id``, put on every log line of the request, in
problem bodies, and carried into the extraction job the request queues
(:func:`service.tasks.enqueue_extraction`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from service import logs, metrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
UNMATCHED = "<unmatched>"  # the route label of a request no URL rule matched (404s): bounded, unlike paths


def request_id_from(header: str | None) -> str:
    """The client's id if it is safe to log and echo, else a fresh one."""
    if header and _SANE_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def start_request() -> None:
    g.request_started = time.perf_counter()
    logs.request_id.set(request_id_from(request.headers.get(REQUEST_ID_HEADER)))


def finish_request(response: Response) -> Response:
    rid = logs.current_request_id()
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    started = g.get("request_started")
    if started is not None:
        seconds = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        metrics.observe_request(route, request.method, response.status_code, seconds)
        log.info("%s %s %s", request.method, request.path, response.status_code,
                 extra={"route": route, "status": response.status_code, "duration_ms": round(seconds * 1000, 2)})
    return response


def forget_request(_exc: BaseException | None = None) -> None:
    logs.request_id.set(None)  # a sync worker's next request must not inherit this one's id


def init_app(app: Flask) -> None:
    app.before_request(start_request)
    app.after_request(finish_request)
    app.teardown_request(forget_request)
