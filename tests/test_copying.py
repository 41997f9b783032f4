"""Holding a date to the document: which printed runs count, and which tokens keep to them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.doctypes import PRINTED_DATE_PATTERN
from service.extract.copying import PRINTED_WORDS, CopyConstraint, PrintedShape, printed_values
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


# --- free text copied as printed words (a line item's description) ---------------

SIDEBAR_TABLE = (
    "Factuurnr.\nRE-53648  Omschrijving  Aantal  Prijs  Bedrag\n"
    "Klant  Onderhoudscontract  1,00  562,15  562,15\nClaus-De Groote NV\n"
    "Kopieerpapier A4, 500 vel  5  4,11  20,55\n"
    'Monitor 27" IPS  2  10,00\n'
    "Beeswax XL  1 kg  12.00\nAcme beeswax"
)
ITEM = b'{"vendor_name":"X","line_items":[{"description":"'


def _printed_runs(text: str) -> set[str]:
    """Every run the constraint should allow, by brute force: words of one cell, or a cell's end then cells of the next line."""
    lines = [[" ".join(c.split()) for c in line.split("  ") if c.strip()] for line in text.split("\n")]
    runs = set()
    for li, cells in enumerate(lines):
        for cell in cells:
            words = cell.split(" ")
            for i in range(len(words)):
                head = " ".join(words[i:])
                runs.update(" ".join(words[i:j]) for j in range(i + 1, len(words) + 1))
                for nxt in lines[li + 1] if li + 1 < len(lines) else []:
                    nwords = nxt.split(" ")
                    runs.update(head + " " + " ".join(nwords[:j]) for j in range(1, len(nwords) + 1))
    return runs


def test_a_description_keeps_to_a_run_of_printed_words(vocab):
    copy = CopyConstraint({"description": PRINTED_WORDS}, SIDEBAR_TABLE.encode(), vocab)
    runs = {json.dumps(r, ensure_ascii=False)[1:-1].encode() for r in _printed_runs(SIDEBAR_TABLE)}
    everything = _every_token(vocab)
    for written in [b"", b"K", b"Klant", b"Onderhouds", b"Kopieerpapier A4, 5", b"Monitor 27", b'Monitor 27\\"', b"Beeswax XL"]:
        kept = copy.restrict(everything, ITEM + written)
        assert kept is not None, written
        for t in kept.tolist():
            piece = vocab.token_bytes[t]
            data = written + piece
            quote = next((i for i in range(len(written), len(data)) if data[i:i + 1] == b'"'
                          and (len(data[:i]) - len(data[:i].rstrip(b"\\"))) % 2 == 0), None)
            if quote is not None:  # closes the value: what it wrote is a whole run
                assert data[:quote] in runs, (written, piece)
            else:
                assert any(r.startswith(data) for r in runs), (written, piece)


def test_a_description_is_not_joined_across_a_column_gap_nor_cut_inside_a_word(vocab):
    copy = CopyConstraint({"description": PRINTED_WORDS}, SIDEBAR_TABLE.encode(), vocab)
    everything = _every_token(vocab)

    def pieces(written: bytes) -> set[bytes]:
        kept = copy.restrict(everything, ITEM + written)
        return {vocab.token_bytes[t] for t in (kept.tolist() if kept is not None else [])}

    after_label = pieces(b"Klant")
    assert b'",' in after_label  # "Klant" is a printed cell
    assert not any(p.startswith(b" O") for p in after_label)  # the table's column beside it is not its continuation
    assert any(p.startswith(b" C") for p in after_label)  # the next line is (a wrapped cell)
    assert pieces(b"Kopieerpapier A4, 5") and not any(b'"' in p for p in pieces(b"Kopieerpapier A4, 5"))
    assert any(p.startswith(b" A") for p in pieces(b"Beeswax XL"))  # wraps onto "Acme beeswax"
    assert any(p.startswith(b'"') for p in pieces(b'Monitor 27\\" IPS'))  # an escaped quote is copied and closed after
    assert copy.restrict(everything, ITEM + b"Pantech") is None  # not printed: the schema's choice stands


def test_the_invoice_copies_its_line_item_descriptions_as_printed_words():
    from config.settings import Settings
    from service.doctypes import load_document_types
    from service.extract.engine import copy_shapes

    shapes = copy_shapes(load_document_types(Settings().schema_dir)["invoice"])
    assert shapes["description"].words and shapes["description"].pattern is None
    assert "vendor_address" not in shapes  # an address is joined from lines with commas: not a run of words
