"""Ingestion: every supported kind of document, and every kind of bad input."""

import io
import json
from email.message import EmailMessage

import pytest
from pypdf import PdfWriter

from service.exceptions import (
    EmptyDocument,
    EncryptedPdf,
    NotAPdf,
    PayloadTooLarge,
    TooManyPages,
    UnreadableDocument,
    UnsupportedMediaType,
)
from service.ingest import EML, JSON, PAGE_SEPARATOR, PDF, TEXT, ingest, ingest_pdf
from tests.conftest import invoice_pdf


def blank_pdf(pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def encrypted_pdf(user_password: str) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(invoice_pdf()))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def email_with_pdf(body: str = "Please find our invoice attached.") -> bytes:
    msg = EmailMessage()
    msg["From"] = "billing@azure-interior.example"
    msg["To"] = "ap@example.com"
    msg["Subject"] = "Invoice INV/2023/03/0008"
    msg.set_content(body)
    msg.add_attachment(invoice_pdf(), maintype="application", subtype="pdf", filename="invoice.pdf")
    return msg.as_bytes()


def test_pdf_with_text_layer_keeps_layout_and_pages():
    doc = ingest(invoice_pdf(), "AzureInterior.pdf", "application/pdf")
    assert doc.media_type == PDF
    assert doc.has_text_layer
    assert doc.page_count == 1 and doc.page_starts == [0]
    assert "Azure Interior" in doc.text


def test_the_old_pdf_entry_point_still_works():
    assert ingest_pdf(invoice_pdf()).text == ingest(invoice_pdf(), "x.pdf").text


def test_plain_text_ticket():
    doc = ingest("Subject: printer on fire\r\nThe printer on floor 3 is on fire.".encode(), "t.txt", "text/plain")
    assert doc.media_type == TEXT
    assert doc.text == "Subject: printer on fire\nThe printer on floor 3 is on fire."
    assert doc.page_count == 1


def test_text_in_windows_1252_is_read():
    doc = ingest("Café crème 12,50 €".encode("cp1252"), None, "text/plain")
    assert doc.text == "Café crème 12,50 €"


def test_json_text_document():
    doc = ingest(json.dumps({"text": "Invoice 42\nTotal 10.00"}).encode(), "doc.json", "application/json")
    assert doc.media_type == JSON
    assert doc.text == "Invoice 42\nTotal 10.00"


@pytest.mark.parametrize("payload", [b"[1, 2]", b'{"body": "x"}', b"{not json"])
def test_json_without_text_is_refused(payload):
    with pytest.raises(UnreadableDocument, match="text"):
        ingest(payload, "doc.json", "application/json")


def test_eml_body_then_attached_pdf_pages():
    doc = ingest(email_with_pdf(), "mail.eml", "message/rfc822")
    assert doc.media_type == EML
    assert doc.attachments == ["invoice.pdf"]
    assert doc.page_count == 2
    first, second = doc.text.split(PAGE_SEPARATOR)
    assert "Subject: Invoice INV/2023/03/0008" in first
    assert "Please find our invoice attached." in first
    assert "Azure Interior" in second
    assert doc.page_of(doc.text.index("Azure Interior")) == 2
    assert doc.page_of(doc.text.index("Please find")) == 1


def test_eml_html_body_becomes_text():
    msg = EmailMessage()
    msg["From"] = "a@example.com"
    msg["Subject"] = "Ticket"
    msg.set_content("<html><body><p>My <b>laptop</b> won&#39;t boot</p><script>x()</script></body></html>", subtype="html")
    doc = ingest(msg.as_bytes(), "t.eml", None)
    assert "My laptop won't boot" in doc.text
    assert "<b>" not in doc.text and "x()" not in doc.text


def test_eml_is_sniffed_from_octet_stream():
    assert ingest(email_with_pdf(), None, "application/octet-stream").media_type == EML


def test_pdf_is_sniffed_from_octet_stream():
    assert ingest(invoice_pdf(), "upload.bin", "application/octet-stream").media_type == PDF


def test_pdf_without_text_layer_is_accepted():
    doc = ingest(blank_pdf(2), "scan.pdf", "application/pdf")
    assert doc.has_text_layer is False
    assert doc.page_count == 2


@pytest.mark.parametrize("data", [b"", b"   \n\t "])
def test_empty_body(data):
    with pytest.raises(EmptyDocument):
        ingest(data, "x.txt", "text/plain")


def test_non_pdf_named_pdf():
    with pytest.raises(NotAPdf, match="PDF header"):
        ingest(b"GIF89a this is an image really", "invoice.pdf", "application/pdf")


def test_corrupted_pdf():
    data = invoice_pdf()
    damaged = data[:200] + b"\x00garbage\xff" * 50 + data[-100:]
    with pytest.raises(UnreadableDocument, match="damaged|no pages"):
        ingest(damaged, "invoice.pdf", "application/pdf")


def test_truncated_pdf():
    with pytest.raises(UnreadableDocument):
        ingest(invoice_pdf()[:300], "invoice.pdf", "application/pdf")


def test_encrypted_pdf_is_refused():
    with pytest.raises(EncryptedPdf, match="password"):
        ingest(encrypted_pdf("s3cret"), "invoice.pdf", "application/pdf")


def test_pdf_encrypted_with_empty_password_opens():
    doc = ingest(encrypted_pdf(""), "invoice.pdf", "application/pdf")
    assert "Azure Interior" in doc.text


def test_oversize_is_413():
    with pytest.raises(PayloadTooLarge) as err:
        ingest(b"x" * 101, "a.txt", "text/plain", max_bytes=100)
    assert err.value.status == 413


def test_too_many_pages_is_413():
    with pytest.raises(TooManyPages) as err:
        ingest(blank_pdf(4), "a.pdf", "application/pdf", max_pages=3)
    assert err.value.status == 413
    assert err.value.extra["pages"] == 4


def test_too_many_pages_counts_attachments():
    with pytest.raises(TooManyPages):
        ingest(email_with_pdf(), "m.eml", None, max_pages=1)


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [("photo.png", "image/png"), ("report.docx", "application/vnd.openxmlformats-officedocument"), (None, "text/html")],
)
def test_unsupported_media_type_is_415(filename, media_type):
    with pytest.raises(UnsupportedMediaType) as err:
        ingest(b"\x89PNG\r\n\x1a\n....", filename, media_type)
    assert err.value.status == 415
