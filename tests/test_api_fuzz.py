"""Property-based fuzzing of the v1 API from its own OpenAPI document (schemathesis).

Every operation in /openapi.json is called with generated requests, valid and
invalid, through the real app on SQLite and the real Redis, with an admin key
(every scope), so the answers are the real ones rather than 401s. Every answer
must not be a 5xx, must have a status, content type, headers and body the
document lists; invalid requests must be refused and valid ones accepted.
Generation is deterministic (derandomized, no example database) and bounded.

Random input rarely finds a real document, so a second test sends the
requests that succeed (a PDF upload, a text submission, reading a document,
its file, a cursor page, a training run) and holds those answers to the same
document.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from config.settings import Settings
from service.app import create_app
from tests.conftest import REDIS_URL, invoice_pdf

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    missing_required_header,
    unsupported_method,
]
MAX_EXAMPLES = 25

# Where a request the schema allows is still rightly refused, because what decides is not in the schema.
NOT_JUDGED_BY_SCHEMA = {
    ("POST", "/v1/documents"): "which bytes make a readable document, and which doc_types this server is "
    "configured with, are decided by reading them (415/422); tests/test_pdf_fuzz.py and test_bad_input cover that",
    ("GET", "/v1/documents"): "a cursor is opaque: only one this API gave out is valid (422 otherwise)",
    ("PUT", "/v1/webhook"): "whether an http(s) URL names a usable host and port (no credentials) is decided by "
    "parsing it (422); tests/test_webhook_signing.py covers those refusals",
}


def document_app():
    """An app that only serves its OpenAPI document: building it writes nothing and connects to nothing."""
    var = Path(tempfile.gettempdir()) / "docket-openapi-never-written"
    return create_app(Settings(var_dir=var, redis_url=REDIS_URL, database_url="sqlite:///:memory:"))


CONFIG = schemathesis.Config.from_dict(
    {
        # No NUL characters: service/guards.py refuses any request carrying one with a 400 before it reaches an
        # operation (PostgreSQL cannot store them), which tests/test_api.py checks route by route.
        "generation": {"deterministic": True, "max-examples": MAX_EXAMPLES, "with-security-parameters": False,
                       "allow-x00": False},
        # 413 refuses a request as surely as 400 does.
        "checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 409, 413, 415, 422]}},
    }
)
# Loaded at import rather than through schemathesis.pytest.from_fixture, whose tests set a private pytest
# attribute (node._nodeid) that pytest 9 no longer has; each test then calls its own app (case.call(app=...)).
schema = schemathesis.openapi.from_wsgi("/openapi.json", document_app(), config=CONFIG)


@pytest.fixture
def fuzz_settings(make_settings, sqlite_url, redis_url):
    # One key sends every case: its rate limit (tests/test_ratelimit.py) would turn the later ones into 429s.
    return make_settings(database_url=sqlite_url, redis_url=redis_url, rate_limit_requests=0)


@pytest.fixture
def admin_headers(make_key, fuzz_settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('admin', client='fuzzer', settings=fuzz_settings)}"}


@pytest.fixture
def fuzz_app(make_app, fuzz_settings):
    return make_app(fuzz_settings)


def positive_wait(case) -> float:
    """The ?wait=N of a case, as a number of seconds (0 when absent or not a number)."""
    wait = (case.query or {}).get("wait")
    try:
        return float(wait) if not isinstance(wait, bool) else 0.0
    except (TypeError, ValueError):
        return 0.0


def checks_for(case) -> list:
    checks = CHECKS
    if (case.method.upper(), case.operation.path) in NOT_JUDGED_BY_SCHEMA:
        checks = [c for c in checks if c is not positive_data_acceptance]
    if case.operation.path == "/readyz":
        # There is no model here, and /readyz exists to say so: its documented answer is 503.
        checks = [c for c in checks if c is not not_a_server_error]
    return checks


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, fuzz_app, admin_headers):
    if positive_wait(case) > 0.2:
        case.query["wait"] = 0.2  # no worker runs here: an accepted document would block the whole wait
    case.call_and_validate(app=fuzz_app, headers=admin_headers, checks=checks_for(case))


def call(app, headers, label: str, **case_kwargs):
    """Send one hand-made request through schemathesis, validated like the generated ones."""
    method, path = label.split(" ", 1)
    case = schema[path][method].Case(**case_kwargs)
    return case.call_and_validate(app=app, headers=headers, checks=CHECKS)


def test_successful_answers_match_the_document(fuzz_app, admin_headers):
    pdf = call(fuzz_app, admin_headers, "POST /v1/documents", media_type="multipart/form-data",
               body={"doc_type": "invoice", "file": invoice_pdf()})
    assert pdf.status_code == 202, pdf.text
    doc = pdf.json()
    assert doc["media_type"] == "application/pdf" and doc["page_count"] == 1
    text = call(fuzz_app, admin_headers, "POST /v1/documents", media_type="application/json",
                body={"doc_type": "ticket", "text": "Subject: VPN down\n\nIt refuses my password."},
                query={"wait": 0.2})
    assert text.status_code == 202, text.text

    got = call(fuzz_app, admin_headers, "GET /v1/documents/{document_id}", path_parameters={"document_id": doc["id"]})
    assert got.status_code == 200 and got.json()["id"] == doc["id"]
    file = call(fuzz_app, admin_headers, "GET /v1/documents/{document_id}/file",
                path_parameters={"document_id": doc["id"]})
    assert file.status_code == 200 and file.content == invoice_pdf()

    first = call(fuzz_app, admin_headers, "GET /v1/documents", query={"limit": 1})
    assert first.status_code == 200 and first.json()["next_cursor"]
    second = call(fuzz_app, admin_headers, "GET /v1/documents", query={"limit": 1, "cursor": first.json()["next_cursor"]})
    assert [d["id"] for d in second.json()["items"]] == [doc["id"]]  # newest first: the PDF came first

    schema_doc = call(fuzz_app, admin_headers, "GET /v1/schemas/{doc_type}", path_parameters={"doc_type": "invoice"})
    assert schema_doc.status_code == 200 and schema_doc.json()["properties"]
    stats = call(fuzz_app, admin_headers, "GET /v1/stats", query={"period": "day", "since": "2000-01-01T00:00:00Z"})
    assert stats.status_code == 200 and stats.json()["period"] == "day"

    run = call(fuzz_app, admin_headers, "POST /v1/training-runs", media_type="application/json", body={"steps": 1})
    assert run.status_code == 202, run.text
    again = call(fuzz_app, admin_headers, "GET /v1/training-runs/{run_id}", path_parameters={"run_id": run.json()["id"]})
    assert again.status_code == 200 and again.json()["status"] == "queued"
    assert call(fuzz_app, admin_headers, "GET /metrics").status_code == 200
