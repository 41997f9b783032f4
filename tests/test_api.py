"""The v1 API on SQLite and on PostgreSQL, with the real Redis: input, errors, auth, idempotency, pagination.

Round trips through the extraction engine live in test_api_roundtrip.py.
"""

import io
import json

import pytest
from redis import Redis
from sqlalchemy import create_engine, func, select, text

from service.models import AuditEvent, Document
from tests.conftest import invoice_pdf, run_jobs
from tests.test_ingest import blank_pdf, bomb_pdf, email_with_pdf, encrypted_pdf, one_page_pdf

TICKET = "From: dana@example.com\nSubject: VPN down\n\nSince this morning the VPN refuses my password. Urgent!"


def count_rows(settings, model=Document) -> int:
    engine = create_engine(settings.database_uri)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(model)).scalar_one()
    finally:
        engine.dispose()


def stored_files(settings) -> list:
    root = settings.files_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def queued_jobs(settings) -> int:
    conn = Redis.from_url(settings.redis_url)
    try:
        return conn.llen("rq:queue:extraction")
    finally:
        conn.close()


def post_file(client, headers, data: bytes, filename: str, mimetype: str, doc_type="invoice", **kw):
    form = {"file": (io.BytesIO(data), filename, mimetype)}
    if doc_type is not None:
        form["doc_type"] = doc_type
    return client.post("/v1/documents", data=form, headers=headers, content_type="multipart/form-data", **kw)


def post_text(client, headers, text: str, doc_type="ticket", **kw):
    return client.post("/v1/documents", json={"doc_type": doc_type, "text": text}, headers=headers, **kw)


def assert_problem(resp, status: int, slug: str | None = None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("https://")
    if slug:
        assert body["type"].endswith("/" + slug), body
    return body


# --- submitting --------------------------------------------------------------


def test_post_pdf_answers_202_with_location(client, auth, settings):
    resp = post_file(client, auth, invoice_pdf(), "AzureInterior.pdf", "application/pdf")
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert resp.headers["Location"] == f"/v1/documents/{body['id']}"
    assert body["status"] == "queued"
    assert body["doc_type"] == "invoice" and body["media_type"] == "application/pdf"
    assert body["page_count"] == 1 and body["has_text_layer"] is True
    assert body["result"] is None
    assert count_rows(settings) == 1 and count_rows(settings, AuditEvent) == 1
    assert len(stored_files(settings)) == 1
    assert queued_jobs(settings) == 1

    got = client.get(resp.headers["Location"], headers=auth)
    assert got.status_code == 200 and got.get_json()["id"] == body["id"]


def test_post_json_text(client, auth, settings):
    resp = post_text(client, auth, TICKET)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["doc_type"] == "ticket" and body["media_type"] == "text/plain"
    file = client.get(f"/v1/documents/{body['id']}/file", headers=auth)
    assert file.status_code == 200 and file.get_data(as_text=True) == TICKET


def test_post_eml(client, auth):
    resp = post_file(client, auth, email_with_pdf(), "mail.eml", "message/rfc822")
    assert resp.status_code == 202
    body = resp.get_json()
    assert body["media_type"] == "message/rfc822"
    assert body["attachments"] == ["invoice.pdf"] and body["page_count"] == 2


def test_get_file_gives_back_the_original_bytes(client, auth):
    data = invoice_pdf("FlipkartInvoice.pdf")
    doc = post_file(client, auth, data, "FlipkartInvoice.pdf", "application/pdf").get_json()
    resp = client.get(doc["links"]["file"], headers=auth)
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf"
    assert resp.data == data


def test_same_file_twice_is_stored_once(client, auth, settings):
    a = post_file(client, auth, invoice_pdf(), "a.pdf", "application/pdf").get_json()
    b = post_file(client, auth, invoice_pdf(), "b.pdf", "application/pdf").get_json()
    assert a["id"] != b["id"] and a["content_sha256"] == b["content_sha256"]
    assert count_rows(settings) == 2
    assert len(stored_files(settings)) == 1


def test_pdf_without_text_layer_goes_to_review(client, auth, settings):
    """No engine is needed: a page with no text is routed to review with the reason."""
    doc = post_file(client, auth, blank_pdf(), "scan.pdf", "application/pdf").get_json()
    assert doc["has_text_layer"] is False
    run_jobs(settings)
    body = client.get(doc["links"]["self"], headers=auth).get_json()
    assert body["status"] == "done"
    assert body["route"] == "review"
    assert [r["message"] for r in body["route_reasons"]] == ["no text layer"]
    assert body["result"] is None


def test_extraction_without_a_model_fails_visibly(client, auth, settings):
    """With no model built, the job fails after its retries and says why; the document is kept."""
    doc = post_text(client, auth, TICKET).get_json()
    run_jobs(settings)
    body = client.get(doc["links"]["self"], headers=auth).get_json()
    assert body["status"] == "failed"
    assert "ModelNotFound" in body["error"]
    assert body["attempts"] == settings.job_retries + 1


# --- bad input: a status, a problem, nothing written --------------------------


def blank_pdf_pages(n):
    return blank_pdf(n)


BAD_INPUTS = [
    # (id, how to send, status, problem slug)
    ("empty-file", dict(file=(b"", "a.pdf", "application/pdf")), 400, "empty-document"),
    ("empty-text", dict(json={"doc_type": "ticket", "text": "  "}), 400, "empty-document"),
    ("no-file-part", dict(form={"doc_type": "invoice"}), 400, "empty-document"),
    ("empty-body", dict(raw=(b"", None)), 400, "empty-document"),
    ("not-a-pdf", dict(file=(b"GIF89a not a pdf at all", "invoice.pdf", "application/pdf")), 422, "not-a-pdf"),
    ("corrupt-pdf", dict(file=(invoice_pdf()[:400], "invoice.pdf", "application/pdf")), 422, "unreadable-document"),
    ("encrypted-pdf", dict(file=(encrypted_pdf("s3cret"), "invoice.pdf", "application/pdf")), 422, "encrypted-pdf"),
    ("oversize", dict(file=(b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024), "big.pdf", "application/pdf")), 413, None),
    ("too-many-pages", dict(file=(blank_pdf_pages(6), "long.pdf", "application/pdf")), 413, "too-many-pages"),
    ("declared-pages", dict(file=(one_page_pdf(count=10**9), "a.pdf", "application/pdf")), 413, "too-many-pages"),
    ("decompression-bomb", dict(file=(bomb_pdf(100), "a.pdf", "application/pdf")), 413, "pdf-too-large"),
    ("nested-objects", dict(file=(one_page_pdf(page_extra=b"/D " + b"[" * 5000 + b"]" * 5000), "a.pdf",
                                  "application/pdf")), 422, "pdf-too-complex"),
    ("absurd-page-size", dict(file=(one_page_pdf(mediabox=b"[0 0 10000000 10000000]"), "a.pdf",
                                    "application/pdf")), 422, "page-size-out-of-range"),
    ("unknown-doc-type", dict(file=(b"hello", "a.txt", "text/plain"), doc_type="recipe"), 422, "unknown-doc-type"),
    ("missing-doc-type", dict(json={"text": "hello"}), 422, "invalid-request"),
    ("image", dict(file=(b"\x89PNG\r\n\x1a\n0000", "scan.png", "image/png")), 415, "unsupported-media-type"),
    ("raw-text-body", dict(raw=(b"hello", "text/plain")), 415, "unsupported-media-type"),
    ("bad-json", dict(raw=(b"{nope", "application/json")), 422, "invalid-request"),
    ("json-array", dict(json=["doc_type", "ticket"]), 422, "invalid-request"),
    ("extra-json-field", dict(json={"doc_type": "ticket", "text": "x", "priority": 1}), 422, "invalid-request"),
    ("bad-wait", dict(json={"doc_type": "ticket", "text": "x"}, query="?wait=-1"), 422, "invalid-request"),
]


@pytest.mark.parametrize(("how", "status", "slug"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input(client, auth, settings, how, status, slug):
    url = "/v1/documents" + how.get("query", "")
    if "file" in how:
        data, name, mimetype = how["file"]
        form = {"file": (io.BytesIO(data), name, mimetype), "doc_type": how.get("doc_type", "invoice")}
        resp = client.post(url, data=form, headers=auth, content_type="multipart/form-data")
    elif "form" in how:
        resp = client.post(url, data=how["form"], headers=auth, content_type="multipart/form-data")
    elif "json" in how:
        resp = client.post(url, json=how["json"], headers=auth)
    else:
        data, content_type = how["raw"]
        resp = client.post(url, data=data, headers=auth, content_type=content_type)
    body = assert_problem(resp, status, slug)
    assert body["instance"] == "/v1/documents"
    assert count_rows(settings) == 0
    assert count_rows(settings, AuditEvent) == 0
    assert stored_files(settings) == []
    assert queued_jobs(settings) == 0


def test_queue_down_is_503_and_leaves_nothing(make_app, make_settings, database_url, make_key):
    settings = make_settings(database_url=database_url, redis_url="redis://127.0.0.1:1/0")
    client = make_app(settings).test_client()
    headers = {"Authorization": f"Bearer {make_key()}"}
    resp = post_file(client, headers, invoice_pdf(), "a.pdf", "application/pdf")
    assert_problem(resp, 503, "service-unavailable")
    assert count_rows(settings) == 0 and count_rows(settings, AuditEvent) == 0
    assert stored_files(settings) == []


def test_unknown_route_and_method_are_problems(client, auth):
    assert_problem(client.get("/v1/nothing", headers=auth), 404)
    resp = client.delete("/v1/documents", headers=auth)
    assert_problem(resp, 405)
    assert "POST" in resp.headers["Allow"]


def test_unknown_document_is_404(client, auth):
    assert_problem(client.get("/v1/documents/" + "0" * 32, headers=auth), 404, "not-found")
    assert_problem(client.get("/v1/documents/" + "0" * 32 + "/file", headers=auth), 404, "not-found")


# --- auth and scopes ---------------------------------------------------------


def test_no_key_is_401(client, settings):
    resp = post_text(client, {}, TICKET)
    assert_problem(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert count_rows(settings) == 0


@pytest.mark.parametrize("header", ["Bearer dk_nothere_abc", "Basic dXNlcjpwYXNz", "Bearer", "dk_abc"])
def test_wrong_key_is_401(client, header):
    assert_problem(client.get("/v1/documents", headers={"Authorization": header}), 401, "unauthorized")


def test_scopes(client, make_key, settings):
    reader = {"Authorization": f"Bearer {make_key('read')}"}
    submitter = {"Authorization": f"Bearer {make_key('submit')}"}
    assert_problem(post_text(client, reader, TICKET), 403, "forbidden")
    assert count_rows(settings) == 0
    doc = post_text(client, submitter, TICKET)
    assert doc.status_code == 202
    assert_problem(client.get(doc.headers["Location"], headers=submitter), 403, "forbidden")
    assert client.get(doc.headers["Location"], headers=reader).status_code == 200


def test_clients_see_only_their_documents_and_admin_sees_all(client, make_key):
    erp = {"Authorization": f"Bearer {make_key('submit,read', client='erp')}"}
    mail = {"Authorization": f"Bearer {make_key('submit,read', client='mail')}"}
    admin = {"Authorization": f"Bearer {make_key('admin', client='ops')}"}
    location = post_text(client, erp, TICKET).headers["Location"]
    assert_problem(client.get(location, headers=mail), 404)
    assert_problem(client.get(location + "/file", headers=mail), 404)
    assert client.get("/v1/documents", headers=mail).get_json()["items"] == []
    assert client.get("/v1/stats", headers=mail).get_json()["totals"]["documents"] == 0
    assert client.get(location, headers=admin).status_code == 200
    assert client.get(location + "/file", headers=admin).data == TICKET.encode()
    assert len(client.get("/v1/documents", headers=admin).get_json()["items"]) == 1
    # The same bytes posted by both clients are stored once, yet each sees only its own document.
    mine = post_text(client, mail, TICKET).headers["Location"]
    assert client.get(mine + "/file", headers=mail).data == TICKET.encode()
    assert [d["id"] for d in client.get("/v1/documents", headers=mail).get_json()["items"]] == [mine.rsplit("/", 1)[1]]
    assert_problem(client.get(location + "/file", headers=mail), 404)


def test_file_downloads_take_no_path_tricks(client, auth):
    """Document ids are looked up, never joined into a path: every trick is a 404 (a NUL a 400), never a 500."""
    doc = post_text(client, auth, TICKET).get_json()
    doc_id, digest = doc["id"], doc["content_sha256"]
    tricks = {
        "/v1/documents/../file": 404,
        "/v1/documents/%2e%2e/file": 404,
        "/v1/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file": 404,
        "/v1/documents/..%5c..%5cetc%5cpasswd/file": 404,
        "/v1/documents/..\\..\\etc\\passwd/file": 404,
        "/v1/documents//etc/passwd/file": 404,
        "/v1/documents/%2fetc%2fpasswd/file": 404,
        f"/v1/documents/{doc_id}/file/../../../../etc/passwd": 404,
        f"/v1/documents/{digest}/file": 404,  # a content address is not a document id
        f"/v1/documents/{doc_id}'%20OR%20'1'='1/file": 404,
        f"/v1/documents/{doc_id}%00/file": 400,
        "/v1/documents/%00/file": 400,
        f"/v1/documents/{doc_id}/file?x=%00": 400,
    }
    for path, status in tricks.items():
        resp = client.get(path, headers=auth)
        body = assert_problem(resp, status)
        assert b"root:" not in resp.data and TICKET not in resp.get_data(as_text=True), path
        if status == 400:
            assert "NUL" in body["detail"]
    assert client.get(f"/v1/documents/{doc_id}/file", headers=auth).data == TICKET.encode()


def test_nul_characters_in_headers_are_a_400_not_a_500(client, auth):
    assert_problem(client.get("/v1/documents", headers={"Authorization": "Bearer dk_\x00abc_x"}), 400, "bad-request")
    resp = post_text(client, {**auth, "Idempotency-Key": "order\x004711"}, TICKET)
    assert_problem(resp, 400, "bad-request")
    assert_problem(client.get("/v1/documents?doc_type=%00", headers=auth), 400, "bad-request")


@pytest.mark.parametrize("sent, kept", [
    ("ticket\r\nX-Injected: 1.txt", "ticketX-Injected: 1.txt"),
    ("ticket\x00.txt", "ticket.txt"),
    ("invoice\u202efdp.exe", "invoicefdp.exe"),
    ("../../etc/passwd", "../../etc/passwd"),  # only a name: it is never a path on disk
])
def test_filenames_lose_control_characters_and_download_with_a_clean_header(client, auth, sent, kept):
    resp = client.post("/v1/documents", json={"doc_type": "ticket", "text": TICKET, "filename": sent}, headers=auth)
    assert resp.status_code == 202, resp.text
    assert resp.get_json()["filename"] == kept
    download = client.get(resp.get_json()["links"]["file"], headers=auth)
    assert download.status_code == 200 and download.data == TICKET.encode()
    disposition = download.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "X-Injected" not in download.headers


# --- idempotency -------------------------------------------------------------


def test_idempotency_same_key_same_body_same_document(client, auth, settings):
    headers = {**auth, "Idempotency-Key": "order-4711"}
    first = post_file(client, headers, invoice_pdf(), "a.pdf", "application/pdf")
    second = post_file(client, headers, invoice_pdf(), "a.pdf", "application/pdf")
    assert first.status_code == 202 and second.status_code in (200, 202)
    assert first.get_json()["id"] == second.get_json()["id"]
    assert first.headers["Location"] == second.headers["Location"]
    assert count_rows(settings) == 1 and queued_jobs(settings) == 1


def test_idempotency_same_key_other_body_is_409(client, auth, settings):
    headers = {**auth, "Idempotency-Key": "order-4711"}
    assert post_file(client, headers, invoice_pdf(), "a.pdf", "application/pdf").status_code == 202
    other = post_file(client, headers, invoice_pdf("FlipkartInvoice.pdf"), "b.pdf", "application/pdf")
    assert_problem(other, 409, "idempotency-conflict")
    other_type = post_file(client, headers, invoice_pdf(), "a.pdf", "application/pdf", doc_type="ticket")
    assert_problem(other_type, 409, "idempotency-conflict")
    assert count_rows(settings) == 1 and len(stored_files(settings)) == 1


def test_idempotency_keys_belong_to_their_client(client, make_key, settings):
    a = {"Authorization": f"Bearer {make_key(client='a')}", "Idempotency-Key": "k"}
    b = {"Authorization": f"Bearer {make_key(client='b')}", "Idempotency-Key": "k"}
    assert post_text(client, a, TICKET).get_json()["id"] != post_text(client, b, TICKET).get_json()["id"]
    assert count_rows(settings) == 2


# --- listing -----------------------------------------------------------------


def test_cursor_pagination_visits_every_document_once(client, auth):
    ids = [post_text(client, auth, f"{TICKET} #{i}").get_json()["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        url = "/v1/documents?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).get_json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    assert seen == list(reversed(ids))  # newest first


def test_list_filters(client, auth, settings):
    post_text(client, auth, TICKET)
    post_file(client, auth, invoice_pdf(), "a.pdf", "application/pdf")
    post_file(client, auth, blank_pdf(), "scan.pdf", "application/pdf")
    run_jobs(settings)  # the scan finishes (review); the others fail: no model here

    def ids(query):
        resp = client.get("/v1/documents" + query, headers=auth)
        assert resp.status_code == 200, resp.get_json()
        return [d["doc_type"] + ":" + d["status"] for d in resp.get_json()["items"]]

    assert sorted(ids("?doc_type=invoice")) == ["invoice:done", "invoice:failed"]
    assert ids("?doc_type=ticket") == ["ticket:failed"]
    assert ids("?status=done") == ["invoice:done"]
    assert ids("?route=review") == ["invoice:done"]
    assert len(ids("?created_after=2000-01-01T00:00:00Z")) == 3
    assert ids("?created_before=2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize("query", ["?limit=0", "?limit=1000", "?status=lost", "?cursor=notacursor", "?created_after=yesterday", "?colour=red",
                                   "?created_before=0.5"])
def test_list_bad_query_is_422(client, auth, query):
    assert_problem(client.get("/v1/documents" + query, headers=auth), 422, "invalid-request")


# --- schemas, health, docs ---------------------------------------------------


def test_schemas(client, auth):
    listing = client.get("/v1/schemas", headers=auth).get_json()["items"]
    names = {s["name"] for s in listing}
    assert {"invoice", "ticket"} <= names
    one = client.get("/v1/schemas/invoice", headers=auth)
    assert one.status_code == 200 and one.mimetype == "application/schema+json"
    assert one.get_json()["properties"]
    assert_problem(client.get("/v1/schemas/recipe", headers=auth), 404)


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "checks": {}}


def test_readyz_says_what_is_missing(client):
    resp = client.get("/readyz")
    assert resp.status_code == 503
    checks = resp.get_json()["checks"]
    assert checks["database"] == "ok" and checks["redis"] == "ok"
    assert checks["model"].startswith("unavailable")


def test_openapi_is_3_1_and_generated_from_the_models(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    assert {"/v1/documents", "/v1/documents/{document_id}", "/v1/schemas", "/healthz", "/readyz"} <= set(paths)
    post = paths["/v1/documents"]["post"]
    assert {"202", "409", "413", "415", "422"} <= set(post["responses"])
    content = post["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)
    schemas = json.dumps(spec["components"]["schemas"])
    assert "route_reasons" in schemas and "confidence" in schemas and "evidence" in schemas
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_openapi_names_the_real_media_types_and_leaves_the_ui_out(client):
    spec = client.get("/openapi.json").get_json()
    assert not [p for p in spec["paths"] if p.startswith("/ui")]
    get = spec["paths"]["/v1/documents/{document_id}"]["get"]["responses"]
    assert set(get["404"]["content"]) == {"application/problem+json"}
    assert set(get["200"]["content"]) == {"application/json"}
    file = spec["paths"]["/v1/documents/{document_id}/file"]["get"]["responses"]["200"]["content"]
    assert {"application/pdf", "text/plain", "message/rfc822"} <= set(file)
    assert set(spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}
    assert spec["paths"]["/v1/training-runs"]["post"]["requestBody"]["required"] is False


def test_metrics_name_their_charset_once(client, auth):
    resp = client.get("/metrics", headers=auth)
    assert resp.status_code == 200 and resp.headers["Content-Type"].count("charset") == 1


def test_docs_page(client):
    resp = client.get("/docs/swagger/")
    assert resp.status_code == 200 and b"openapi.json" in resp.data


def test_a_very_long_filename_is_kept_to_its_last_255_characters(client, auth):
    name = "x" * 300 + ".pdf"
    resp = post_file(client, auth, invoice_pdf(), name, "application/pdf")
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["filename"] == name[-255:]


def test_a_database_failure_mid_insert_leaves_no_row_and_no_file(client, auth, settings):
    """The audit table vanishes under the app: the insert fails, and the stored file is taken back."""
    engine = create_engine(settings.database_uri)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_events RENAME TO audit_events_away"))
    try:
        resp = post_file(client, auth, invoice_pdf(), "a.pdf", "application/pdf")
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_events_away RENAME TO audit_events"))
        engine.dispose()
    body = assert_problem(resp, 500, "internal-error")
    assert "changed nothing" in body["detail"]
    assert count_rows(settings) == 0
    assert stored_files(settings) == []
    assert queued_jobs(settings) == 0
