"""Fuzzing PDF ingestion with mutated real invoices (hypothesis).

The invoices of ../shared/data/invoice2data are read in place and broken the
ways files break and attackers break them: flipped bytes, truncation, a piece
of another invoice spliced in, runs of junk or of PDF syntax (``<<``, ``[``,
``stream``, ``/Length 999999999``) inserted, pieces cut out or doubled. Each
is ingested as the API ingests it: in a forked child under the served limits.
Every outcome must be a document that holds together or one of Docket's own
errors for unreadable input, never another exception and never a parse past
its time limit. Deterministic: derandomized, no example database.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import Settings
from service.exceptions import DocketError, EmptyDocument, PayloadTooLarge, UnreadableDocument
from service.ingest import IngestedDocument, PdfLimits, ingest
from tests.conftest import DATA_DIR, invoice_pdf

INVOICES = sorted(path.name for path in DATA_DIR.glob("*.pdf"))
LIMITS = PdfLimits.from_settings(Settings())
MAX_PAGES = Settings().max_pages
# What ingestion may refuse a broken PDF with: 400, 413 and 422 problems, each with its reason.
REFUSALS = (UnreadableDocument, PayloadTooLarge, EmptyDocument)
SYNTAX = [b"<<", b">>", b"[", b"]", b"(", b")", b"\\", b"obj", b"endobj", b"stream\n", b"\nendstream", b"R",
          b"1 0 R", b"999999 0 R", b"/Length 999999999", b"/Filter /FlateDecode", b"/Count 1000000000",
          b"/MediaBox [0 0 99999999 99999999]", b"xref\n0 1\n", b"trailer", b"startxref\n0\n", b"%%EOF",
          b"%PDF-1.7\n", b"/Type /Pages /Kids [", b"/Encrypt 1 0 R", b"-1", b"1e400", b"\x00" * 8]


@cache
def original(name: str) -> bytes:
    return invoice_pdf(name)


@st.composite
def broken_invoices(draw) -> bytes:
    data = bytearray(original(draw(st.sampled_from(INVOICES))))
    for _ in range(draw(st.integers(1, 4))):
        # Half the damage lands in the last 2 KiB: the cross-reference table and trailer a reader starts from.
        tail = draw(st.booleans())
        low = max(0, len(data) - 2048) if tail else 0
        at = draw(st.integers(low, max(low, len(data) - 1)))
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "junk", "syntax", "cut", "double"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[max(at, 1):]
        elif kind == "splice":
            other = original(draw(st.sampled_from(INVOICES)))
            start = draw(st.integers(0, len(other) - 1))
            data[at:at] = other[start : start + draw(st.integers(1, 4096))]
        elif kind == "junk":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "syntax":
            data[at:at] = draw(st.sampled_from(SYNTAX)) * draw(st.sampled_from([1, 2, 50, 2000]))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 4096))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 4096))]
        if not data:
            data = bytearray(b"%PDF-")
    return bytes(data)


def assert_holds_together(doc: IngestedDocument) -> None:
    assert isinstance(doc.text, str) and doc.media_type == "application/pdf"
    assert 1 <= doc.page_count <= MAX_PAGES and len(doc.page_starts) == doc.page_count
    assert doc.page_starts[0] == 0 and doc.page_starts == sorted(set(doc.page_starts))
    assert doc.page_starts[-1] <= len(doc.text) <= LIMITS.max_text_chars + 3 * doc.page_count


@pytest.mark.parametrize("name", INVOICES)
def test_every_real_invoice_is_read_under_the_served_limits(name):
    assert_holds_together(ingest(original(name), name, max_pages=MAX_PAGES, pdf_limits=LIMITS))


@given(data=broken_invoices())
@settings(max_examples=100, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_a_broken_invoice_is_read_or_refused_with_a_reason(data):
    try:
        doc = ingest(data, "broken.pdf", "application/pdf", max_pages=MAX_PAGES, pdf_limits=LIMITS)
    except REFUSALS as exc:
        assert exc.detail and exc.status in (400, 413, 422)
        # Past the time limit the child is killed and the document refused: that is no hang.
        return
    except DocketError as exc:  # pragma: no cover - the failure message names it
        pytest.fail(f"{type(exc).__name__} ({exc.status}) is not an ingestion refusal: {exc.detail}")
    assert_holds_together(doc)
