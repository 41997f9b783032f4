"""Holding a date to the document: which printed runs count, and which tokens keep to them."""

from __future__ import annotations

import numpy as np
import pytest

from service.doctypes import PRINTED_DATE_PATTERN
from service.extract.copying import CopyConstraint, PrintedShape, printed_values
from service.extract.vocabulary import TokenVocabulary
from service.normalize import normalize_date

DATE = PrintedShape(PRINTED_DATE_PATTERN, normalize_date)
RECEIPT = "TEL: 1300-88-6555\nINV NO: 60571377\nCASHIER: ROJAN 25-03-18 18:47\nDATE :11/04/18\nTOTAL 12.50"


def test_printed_dates_are_whole_runs_that_read_as_dates():
    found = printed_values(DATE, RECEIPT)
    assert found == {"25-03-18", "25-03-18 18:47", "11/04/18"}
    # a phone number has the shape but no such month; a run inside a number is no run
    assert "1300-88-6555" not in found and "5-03-18" not in found and "1/04/18" not in found


@pytest.fixture(scope="module")
def vocab(tiny_model_dir) -> TokenVocabulary:
    return TokenVocabulary.from_file(tiny_model_dir / "tokenizer.json")


def _every_token(vocab) -> np.ndarray:
    return np.array([t for t, piece in enumerate(vocab.token_bytes) if piece], dtype=np.int64)


def test_inside_a_date_only_continuations_of_printed_dates_are_allowed(vocab):
    copy = CopyConstraint({"invoice_date": DATE}, RECEIPT.encode(), vocab)
    everything = _every_token(vocab)
    for written in [b"", b"2", b"25-03", b"11/04/18"]:
        out = b'{"vendor_name":"X","invoice_date":"' + written
        kept = copy.restrict(everything, out)
        assert kept is not None and 0 < len(kept) < len(everything)
        for t in kept.tolist():
            piece = vocab.token_bytes[t]
            value = written + piece.split(b'"')[0]
            if b'"' in piece:
                assert value.decode() in copy.printed("invoice_date"), piece
            else:
                assert any(v.encode().startswith(value) for v in copy.printed("invoice_date")), piece


def test_outside_a_date_nothing_is_restricted(vocab):
    copy = CopyConstraint({"invoice_date": DATE}, RECEIPT.encode(), vocab)
    everything = _every_token(vocab)
    for out in [b'{"vendor_name":"', b'{"vendor_name":"X","invoice_date":"11/04/18","due_date":', b'{"invoice_number":"']:
        assert copy.restrict(everything, out) is None


def test_when_nothing_keeps_to_the_document_the_schema_stands(vocab):
    copy = CopyConstraint({"invoice_date": DATE}, RECEIPT.encode(), vocab)
    digits = np.array([vocab.ids_by_bytes[b"7"]], dtype=np.int64)  # no printed date starts with 7
    assert copy.restrict(digits, b'{"invoice_date":"') is None


def test_a_document_without_dates_constrains_nothing(vocab):
    copy = CopyConstraint({"invoice_date": DATE}, b"Total 12.50", vocab)
    everything = _every_token(vocab)
    assert copy.printed("invoice_date") == set()
    assert copy.restrict(everything, b'{"invoice_date":"') is None


def test_an_iban_is_copied_whole_with_valid_check_digits_and_never_a_bic(vocab):
    from config.settings import Settings
    from service.doctypes import load_document_types
    from service.extract.engine import copy_shapes

    iban = copy_shapes(load_document_types(Settings().schema_dir)["invoice"])["iban"]
    sidebar = ("Bankgegevens\nBE59 4828 4022 4876  BTW 21%  828,54\nSQJFBE22  Totaal  4.773,98\n"
               "Old account DE89 3704 0044 0532 0130 01 (closed)\nIBAN: GB33BUKB20201555555555")
    # the grouped one ends at the column gap; a wrong check digit, a BIC and a run into "BTW" are no IBAN
    assert printed_values(iban, sidebar) == {"BE59 4828 4022 4876", "GB33BUKB20201555555555"}
    copy = CopyConstraint({"iban": iban}, sidebar.encode(), vocab)
    kept = copy.restrict(_every_token(vocab), b'{"vendor_name":"X","iban":"')
    assert kept is not None
    assert {vocab.token_bytes[t][:1] for t in kept.tolist()} == {b"B", b"G"}
