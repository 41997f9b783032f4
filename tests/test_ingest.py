"""Ingestion: every supported kind of document, and every kind of bad input."""

import io
import json
import subprocess
import sys
import zlib
from email.message import EmailMessage

import pytest
from pypdf import PdfWriter

from config.settings import Settings
from service.exceptions import (
    EmptyDocument,
    EncryptedPdf,
    NotAPdf,
    PageSizeOutOfRange,
    PayloadTooLarge,
    PdfTooComplex,
    PdfTooLarge,
    TooManyPages,
    UnreadableDocument,
    UnsupportedMediaType,
)
from service.ingest import EML, JSON, PAGE_SEPARATOR, PDF, TEXT, PdfLimits, ingest, ingest_pdf
from tests.conftest import ROOT, invoice_pdf


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


# --- hostile PDFs: written byte by byte, read under the served limits ----------

SERVED = PdfLimits.from_settings(Settings())  # the API's limits: a forked child, time, memory, streams
HELLO = b"BT /F1 12 Tf 72 720 Td (Hello from a hand-made PDF) Tj ET"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def raw_pdf(*objects: bytes) -> bytes:
    """A PDF of these objects (1 0 obj is the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data: bytes, compressed: bytes | None = None) -> bytes:
    if compressed is None:
        return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(compressed), compressed)


def one_page_pdf(content: bytes = HELLO, page_extra: bytes = b"", mediabox: bytes = b"[0 0 595 842]",
                 count: int = 1, content_stream: bytes | None = None) -> bytes:
    return raw_pdf(
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % count,
        b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R %s>>"
        % (mediabox, page_extra),
        content_stream or stream(content),
        FONT,
    )


def many_pages_pdf(pages: int) -> bytes:
    """*pages* real page objects sharing one content stream."""
    first = 5
    kids = b" ".join(b"%d 0 R" % (first + i) for i in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 3 0 R >>"
    return raw_pdf(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
                   stream(HELLO), FONT, *([page] * pages))


def deflated_zeros(megabytes: int) -> bytes:
    """*megabytes* MiB of zero bytes, deflated (about 1,000 to 1), without holding them all."""
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()


def bomb_pdf(megabytes: int = 100) -> bytes:
    return one_page_pdf(content_stream=stream(b"", compressed=deflated_zeros(megabytes)))


def test_a_hand_made_pdf_reads_the_same_in_the_child_and_in_process():
    assert ingest(one_page_pdf(), "a.pdf", pdf_limits=SERVED).text == "Hello from a hand-made PDF"
    assert ingest(invoice_pdf(), "a.pdf", pdf_limits=SERVED).text == ingest(invoice_pdf(), "a.pdf").text


def test_a_decompression_bomb_is_refused_413():
    data = bomb_pdf(100)
    assert len(data) < 200_000  # 100 MiB inflated
    with pytest.raises(PdfTooLarge, match="decompression bomb") as err:
        ingest(data, "bomb.pdf", pdf_limits=SERVED)
    assert err.value.status == 413


MEMORY_CAP_CHECK = """
import sys
from service.exceptions import PdfTooLarge
from service.ingest import PdfLimits, ingest
limits = PdfLimits(timeout_s=30, memory_mb=32, max_stream_bytes=1 << 30)
try:
    ingest(open(sys.argv[1], "rb").read(), "bomb.pdf", pdf_limits=limits)
except PdfTooLarge as exc:
    print("refused", exc.status, exc.detail)
else:
    print("accepted")
"""


def test_memory_past_the_cap_is_refused_413(tmp_path):
    """With pypdf's own stream limit out of the way, the memory cap still holds.

    In a fresh interpreter, about the size of an API worker: a child forked from this test process
    (torch and all loaded, much of its heap freed again) can inflate a bomb into memory it already
    has mapped, without growing the address space the cap limits.
    """
    bomb = tmp_path / "bomb.pdf"
    bomb.write_bytes(bomb_pdf(100))
    out = subprocess.run([sys.executable, "-c", MEMORY_CAP_CHECK, str(bomb)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.stdout.startswith("refused 413") and "memory" in out.stdout, out.stdout + out.stderr


NESTED = [
    ("arrays-in-the-page", dict(page_extra=b"/Deep " + b"[" * 5000 + b"]" * 5000)),
    ("dictionaries-in-the-page", dict(page_extra=b"/Deep " + b"".join(b"<< /K%d " % i for i in range(3000)) + b">>" * 3000)),
    ("arrays-as-the-mediabox", dict(mediabox=b"[" * 3000 + b"0 0 595 842" + b"]" * 3000)),
    ("arrays-in-the-content-stream", dict(content=b"[" * 50_000 + b"]" * 50_000 + b" " + HELLO)),
]


@pytest.mark.parametrize("build", [n[1] for n in NESTED], ids=[n[0] for n in NESTED])
def test_deeply_nested_objects_are_refused_422(build):
    with pytest.raises(PdfTooComplex, match="nests") as err:
        ingest(one_page_pdf(**build), "deep.pdf", pdf_limits=SERVED)
    assert err.value.status == 422


def test_nesting_that_real_files_have_is_read():
    assert ingest(one_page_pdf(page_extra=b"/Shallow " + b"[" * 20 + b"]" * 20), "a.pdf", pdf_limits=SERVED).text


def test_a_billion_declared_pages_are_refused_413():
    with pytest.raises(TooManyPages, match="declares 1000000000 pages") as err:
        ingest(one_page_pdf(count=10**9), "a.pdf", max_pages=50, pdf_limits=SERVED)
    assert err.value.status == 413 and err.value.extra["pages"] == 10**9


def test_many_real_pages_are_refused_even_when_the_count_lies():
    data = many_pages_pdf(300).replace(b"/Count 300", b"/Count 1")
    with pytest.raises(TooManyPages, match="has 300 pages") as err:
        ingest(data, "a.pdf", max_pages=50, pdf_limits=SERVED)
    assert err.value.extra == {"pages": 300, "max_pages": 50}


def test_a_page_tree_past_pypdfs_limits_is_refused_not_a_500():
    kids = b"3 0 R " * 200_000  # one page, listed 200,000 times
    data = raw_pdf(b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count 1 >>" % kids,
                   b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>", stream(HELLO))
    with pytest.raises((PdfTooComplex, TooManyPages)) as err:
        ingest(data, "a.pdf", max_pages=50, pdf_limits=SERVED)
    assert err.value.status in (413, 422)


@pytest.mark.parametrize("mediabox", [b"[0 0 10000000 10000000]", b"[0 0 595 99999999]", b"[-9000000 0 9000000 842]"])
def test_an_absurd_page_size_is_refused_422(mediabox):
    with pytest.raises(PageSizeOutOfRange, match="Page 1 measures") as err:
        ingest(one_page_pdf(mediabox=mediabox), "a.pdf", pdf_limits=SERVED)
    assert err.value.status == 422 and err.value.extra["max_side_pt"] == 14_400


def test_text_past_the_cap_is_refused_413():
    with pytest.raises(PdfTooLarge, match="more than 1000 characters") as err:
        ingest(invoice_pdf(), "a.pdf", pdf_limits=PdfLimits(timeout_s=30, max_text_chars=1000))
    assert err.value.status == 413


def test_a_parse_past_the_time_limit_is_stopped_and_refused_422():
    """50,000 lines of text keep pypdf's layout mode busy for many seconds; the child is killed at half a second."""
    lines = b"".join(b"0 -1 Td (%s) Tj " % (b"x" * 200) for _ in range(50_000))
    data = one_page_pdf(content_stream=stream(b"", compressed=zlib.compress(b"BT /F1 1 Tf " + lines + b"ET")))
    with pytest.raises(PdfTooComplex, match="longer than 0.5 seconds") as err:
        ingest(data, "slow.pdf", pdf_limits=PdfLimits(timeout_s=0.5))
    assert err.value.status == 422


def test_an_attached_bomb_is_refused_too():
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "a@example.com", "Invoice"
    msg.set_content("See attached.")
    msg.add_attachment(bomb_pdf(100), maintype="application", subtype="pdf", filename="invoice.pdf")
    with pytest.raises(PdfTooLarge, match="decompression bomb"):
        ingest(msg.as_bytes(), "m.eml", pdf_limits=SERVED)
