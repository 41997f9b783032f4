"""Documents awaiting review, seeded straight into the database as the pipeline leaves them.

Each document gets its real stored file, the text ingestion made of it, and an
:class:`ExtractionAttempt` built from the engine's own result classes
(:class:`service.extract.result.FieldResult`), validated and routed by the
real :func:`service.validate.validate` and :func:`service.routing.decide` —
only the model's answer itself is written by hand, so the tests know which
fields are wrong.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from config.settings import Settings
from service.db import Database
from service.doctypes import load_document_types
from service.escalation import decide_after_escalation, merge
from service.extract.result import Evidence, Extraction, FieldResult
from service.ingest import ingest_pdf, ingest_text
from service.models import DONE, AuditEvent, Document, ExtractionAttempt, utcnow
from service.routing import decide
from service.storage import FileStore
from service.users import create_user
from service.validate import validate

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "invoice2data"
PASSWORD = "correct horse battery"

XSS_TICKET = """From: Mallory <mallory@example.com>
Subject: <script>window.__xss = 1</script> refund please

Hello, my order 4411 arrived broken. <img src=x onerror="window.__xss = 2">
Please refund me. <b>bold?</b>
"""


def add_user(settings: Settings, email: str, role: str = "reviewer") -> int:
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            return create_user(session, email, PASSWORD, role=role).id
    finally:
        database.dispose()


def register_versions(session, folder: Path, names: tuple[str, ...] = ("m-1", "m-2"), active: str = "m-1") -> None:
    """Register a stand-in model folder per name (a one-byte model.onnx each) and make *active* the served one."""
    from service import registry  # noqa: PLC0415 - the registry pulls in the model stack

    for name in names:
        (folder / name).mkdir()
        (folder / name / "model.onnx").write_bytes(name.encode())
        registry.register(session, version=name, path=folder / name, actor="test")
    session.commit()
    registry.promote(session, active, "test")


def found(text: str, raw: str | None, value: Any, confidence: float, source: str = "model") -> FieldResult:
    """A field whose evidence is where *raw* first appears in *text* (no evidence when absent).

    A misread keeps the evidence of what is printed and gets a wrong *value*.
    """
    evidence = None
    if raw is not None and raw in text:
        start = text.index(raw)
        evidence = Evidence(start, start + len(raw), 1, raw)
    return FieldResult(value=value, raw=raw, confidence=confidence, evidence=evidence, source=source)


def rows_field(text: str, rows: list[dict[str, tuple[Any, Any, float]]]) -> FieldResult:
    items = [{k: found(text, raw, value, conf) for k, (raw, value, conf) in row.items()} for row in rows]
    return FieldResult(value=[{k: cell.value for k, cell in row.items()} for row in items], raw=None,
                       confidence=min(c.confidence for row in items for c in row.values()), items=items)


def store_document(settings: Settings, doc_type_name: str, data: bytes, ingested, filename: str,
                   fields: dict[str, FieldResult], age_minutes: int = 0, warnings: tuple[str, ...] = (),
                   frontier: dict[str, Any] | None = None) -> str:
    """Store the file and a done document routed by the real validator and router.

    With *frontier* (the fields on which a frontier model answered differently),
    the real :func:`service.escalation.merge` folds its answer in and a second,
    ``frontier`` attempt holds the merged fields, as the extraction job does.
    """
    doc_type = load_document_types(settings.schema_dir)[doc_type_name]
    digest, _ = FileStore(settings.files_dir).put(data)
    extraction = Extraction(doc_type=doc_type_name, fields=fields, model_version="tiny-test", warnings=list(warnings))
    failures = validate(doc_type, extraction.values(), tolerance=settings.rule_tolerance)
    decision = decide(doc_type, extraction, failures, default_threshold=settings.default_threshold,
                      has_text_layer=ingested.has_text_layer)
    merged = None
    if frontier is not None:
        merged = merge(doc_type, extraction, {**extraction.values(), **frontier}, settings.frontier_confidence)
        decision = decide_after_escalation(doc_type, merged, validate(doc_type, merged.extraction.values()),
                                           default_threshold=settings.default_threshold, before=decision)
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            doc = Document(
                doc_type=doc_type_name, filename=filename, media_type=ingested.media_type, content_sha256=digest,
                size_bytes=len(data), page_count=ingested.page_count, page_starts=ingested.page_starts,
                has_text_layer=ingested.has_text_layer, text=ingested.text, status=DONE,
                route=decision.route, route_reasons=[dict(r) for r in decision.reasons],
                created_at=utcnow() - timedelta(minutes=age_minutes), completed_at=utcnow(),
            )
            session.add(doc)
            session.flush()
            result = extraction.to_dict()
            session.add(ExtractionAttempt(
                document_id=doc.id, engine="model", model_version="tiny-test", fields=result["fields"],
                warnings=result["warnings"],
                validation=[{"name": f.name, "fields": list(f.fields), "message": f.message} for f in failures],
            ))
            if merged is not None:
                session.add(ExtractionAttempt(document_id=doc.id, engine="frontier", model_version="frontier-test",
                                              fields=merged.fields_dict()))
            session.add(AuditEvent(actor="worker", action="extraction.done", document_id=doc.id,
                                   data={"route": doc.route, "reasons": doc.route_reasons}))
            session.commit()
            return doc.id
    finally:
        database.dispose()


def seed_pdf_invoice(settings: Settings, age_minutes: int = 60) -> str:
    """AzureInterior.pdf with the total misread and one line amount uncertain."""
    data = (DATA_DIR / "AzureInterior.pdf").read_bytes()
    ingested = ingest_pdf(data)
    t = ingested.text
    fields = {
        "vendor_name": found(t, "Azure Interior", "Azure Interior", 0.97),
        "vendor_address": found(t, "4557 De Silva St", "4557 De Silva St", 0.95),
        "vendor_tax_id": found(t, None, None, 0.96),
        "buyer_name": found(t, "YourCompany", "YourCompany", 0.93),
        "invoice_number": found(t, "INV/2023/03/0008", "INV/2023/03/0008", 0.98),
        "invoice_date": found(t, "03/20/2023", "2023-03-20", 0.96),
        "due_date": found(t, "04/04/2023", "2023-04-04", 0.95),
        "purchase_order": found(t, "CUSTREF123", "CUSTREF123", 0.92),
        "currency": found(t, "$", "USD", 0.94),
        "subtotal": found(t, "262.90", 262.9, 0.95),
        "tax": found(t, "16.94", 16.94, 0.94),
        "total": found(t, "279.84", 279.34, 0.41),  # misread: the document says 279.84
        "amount_due": found(t, None, None, 0.93),
        "iban": found(t, None, None, 0.95),
        "line_items": rows_field(t, [
            {"description": ("Beeswax XL", "Beeswax XL", 0.95), "quantity": ("1.00", 1.0, 0.95),
             "unit_price": ("42.00", 42.0, 0.95), "amount": ("42.00", 42.0, 0.95)},
            {"description": ("Office Chair", "Office Chair", 0.95), "quantity": ("1.00", 1.0, 0.95),
             "unit_price": ("70.00", 70.0, 0.95), "amount": ("70.00", 70.0, 0.95)},
            {"description": ("Olive Oil", "Olive Oil", 0.95), "quantity": ("1.00", 1.0, 0.95),
             "unit_price": ("1.00", 1.0, 0.95), "amount": ("0.90", 0.9, 0.95)},
            {"description": ("Luxury Truffles", "Luxury Truffles", 0.95), "quantity": ("15.00", 15.0, 0.95),
             "unit_price": ("10.00", 10.0, 0.95), "amount": ("$ 150.00", 15.0, 0.38)},  # misread: 150.00
        ]),
    }
    return store_document(settings, "invoice", data, ingested, "AzureInterior.pdf", fields, age_minutes)


def seed_ticket(settings: Settings, text: str = XSS_TICKET, filename: str = "xss-ticket.txt",
                age_minutes: int = 30, uncertainty: float = 0.35, warnings: tuple[str, ...] = (),
                frontier: dict[str, Any] | None = None) -> str:
    """A support ticket (by default one full of markup) whose queue (category) and summary are at *uncertainty*.

    The category is what routes it to review: the summary is advisory.
    """
    data = text.encode()
    ingested = ingest_text(text)
    fields = {
        "customer_name": found(text, "Mallory", "Mallory", 0.95),
        "customer_email": found(text, "mallory@example.com", "mallory@example.com", 0.97),
        "order_id": found(text, "4411", "4411", 0.94),
        "invoice_id": found(text, None, None, 0.95),
        "product": found(text, None, None, 0.91),
        "category": found(text, None, "refund", uncertainty),
        "priority": found(text, None, "medium", 0.92),
        "sentiment": found(text, None, "negative", 0.95),
        "language": found(text, None, "en", 0.99),
        "summary": found(text, "<script>window.__xss = 1</script>", "<script>window.__xss = 1</script>",
                         uncertainty),
    }
    return store_document(settings, "ticket", data, ingested, filename, fields, age_minutes, warnings, frontier)
