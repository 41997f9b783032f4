"""The shared prompt/target module, spans, evidence and calibration: pure pieces of the engine."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from config.settings import Settings
from service.doctypes import load_document_types
from service.extract.confidence import Calibration, raw_confidence
from service.extract.evidence import find_span
from service.extract.prompt import clean_value, compact_text, fit_to_budget, render_target, tokenize_target
from service.extract.spans import token_spans, value_spans
from training.synth.parties import IBAN_BBAN, group4, make_iban

DOC_TYPES = load_document_types(Settings().schema_dir)


def test_compaction_keeps_words_and_line_structure_but_drops_layout_whitespace():
    text = "      INVOICE          No 42\n\n\n\n  Total:        1.234,56 EUR   \n\fPage 2"
    assert compact_text(text) == "INVOICE  No 42\n\nTotal:  1.234,56 EUR\n\nPage 2"  # a page break reads as a blank line


def test_fit_to_budget_keeps_first_and_last_pages_and_says_what_it_left_out():
    pages = [f"page {i} " + "word " * 50 for i in range(1, 6)]
    fitted = fit_to_budget(pages, lambda t: len(t.split()), budget=120)
    assert fitted.text.startswith("page 1") and "page 5" in fitted.text
    assert fitted.omitted_pages == [2, 3, 4]


def test_fit_to_budget_cuts_an_oversized_first_page_at_a_line_boundary():
    page = "\n".join(f"line {i} with some words" for i in range(100))
    fitted = fit_to_budget([page], lambda t: len(t.split()), budget=50)
    assert fitted.cut_page == 1 and len(fitted.text.split()) <= 50
    assert fitted.text.endswith("words")


def test_rendered_target_is_schema_valid_compact_json_with_unlabelled_values_masked():
    doc_type = DOC_TYPES["ticket"]
    target = {"customer_name": "Ana\nLopez", "category": "refund", "language": "en", "order_id": "A-1"}
    text, masked = render_target(doc_type, target, labelled={"category", "language", "order_id"})
    obj = json.loads(text)
    jsonschema.validate(obj, doc_type.decode_schema)
    assert list(obj) == [f.name for f in doc_type.fields]
    assert obj["customer_name"] == "Ana Lopez"  # one line
    masked_text = [text[a:b] for a, b in masked]
    assert '"Ana Lopez"' in masked_text and '"refund"' not in masked_text


def test_target_tokenization_round_trips_and_respects_the_schema(tiny_model_dir: Path):
    from service.extract.engine import load_index
    from service.extract.vocabulary import TokenVocabulary

    vocab = TokenVocabulary.from_file(tiny_model_dir / "tokenizer.json")
    doc_type = DOC_TYPES["invoice"]
    index = load_index(doc_type, vocab, tiny_model_dir.parent / "ic")
    target = {"vendor_name": "Müller & Söhne GmbH", "invoice_date": "14. März 2024", "total": "1.234,56",
              "line_items": [{"description": 'Bolt "M8"', "quantity": "2", "unit_price": "1,00", "amount": "2,00"}]}
    text, _ = render_target(doc_type, target)
    ids = tokenize_target(text, vocab, index)
    assert vocab.decode_bytes(ids).decode("utf-8") == text
    with pytest.raises(ValueError):
        tokenize_target(text.replace('"total"', '"totl"'), vocab, index)


def test_string_values_are_tokenized_as_the_document_spells_them(tiny_model_dir: Path):
    """A copied value must be the same tokens in the target as in the document, or training teaches not to copy."""
    from service.extract.engine import load_index
    from service.extract.vocabulary import TokenVocabulary

    vocab = TokenVocabulary.from_file(tiny_model_dir / "tokenizer.json")
    doc_type = DOC_TYPES["invoice"]
    index = load_index(doc_type, vocab, tiny_model_dir.parent / "ic")
    names = ["Salzplatz 470, 74163 Tecklenburg", "Roosenboom & van den Assem", "Zobel Bien e.V."]
    target = {"vendor_name": names[2], "vendor_address": names[0], "buyer_name": names[1]}
    text, _ = render_target(doc_type, target)
    ids = tokenize_target(text, vocab, index)
    assert vocab.decode_bytes(ids).decode("utf-8") == text
    for name in names:
        natural = vocab.encode(name)
        assert any(ids[i : i + len(natural)] == natural for i in range(len(ids))), name
    # Longest match would have spelled at least one of them differently (else this test proves nothing).
    assert any(_longest_match(vocab, name) != vocab.encode(name) for name in names)


def test_value_spans_skip_keys_and_escapes_and_end_on_an_unterminated_string():
    from service.extract.prompt import string_value_spans

    text = '{"a":"x\\"y","b":null,"c":[{"d":"1"}],"e":"open'
    data = text.encode()
    assert [data[a:b] for a, b in string_value_spans(text)] == [b'x\\"y', b"1", b"open"]


def _longest_match(vocab, text: str) -> list[int]:
    data, pos, out = text.encode(), 0, []
    while pos < len(data):
        size = next(n for n in range(min(vocab.max_token_bytes, len(data) - pos), 0, -1)
                    if data[pos : pos + n] in vocab.ids_by_bytes)
        out.append(vocab.ids_by_bytes[data[pos : pos + size]])
        pos += size
    return out


def test_value_spans_point_at_each_value():
    out = '{"a":"x, \\"y\\"","b":null,"c":[{"d":"1"},{"d":"2"}],"e":[]}'.encode()
    spans = value_spans(out)
    assert out[slice(*spans["a"])] == b'"x, \\"y\\""'
    assert out[slice(*spans["b"])] == b"null"
    assert [out[slice(*row["d"])] for row in spans["c"]] == [b'"1"', b'"2"']
    assert out[slice(*spans["e"].span)] == b"[]"
    assert token_spans([b"ab", b"c"]) == [(0, 2), (2, 3)]


def test_evidence_is_found_exactly_then_loosely_and_after_the_hint():
    text = "Total 12.00\nACME  Tools\nLtd\nTotal 12.00"
    assert find_span("12.00", text) == (6, 11)
    assert find_span("12.00", text, start_hint=12) == (text.rindex("12.00"), len(text))
    a, b = find_span("acme tools, ltd", text)
    assert text[a:b] == "ACME  Tools\nLtd"
    assert find_span("Globex", text) is None


@given(st.lists(st.floats(0, 1), min_size=2, max_size=20, unique=True), st.floats(0, 1), st.floats(0, 1))
@settings(max_examples=200, deadline=None)
def test_calibration_is_monotone_and_bounded(xs, a, b):
    xs = sorted(xs)
    ys = sorted(x * 0.9 for x in xs)
    cal = Calibration(xs, ys)
    lo, hi = sorted((a, b))
    assert 0.0 <= cal(lo) <= cal(hi) <= 1.0


def test_raw_confidence_is_the_weakest_token_and_doubts_unfound_values():
    assert raw_confidence([0.9, 0.6, 0.99], evidence_expected=False, evidence_found=False) == pytest.approx(0.6)
    assert raw_confidence([0.9], evidence_expected=True, evidence_found=False) == pytest.approx(0.45)
    assert raw_confidence([], evidence_expected=True, evidence_found=True) == 1.0


def test_a_field_cue_is_its_labels_in_any_case_and_none_without_them():
    invoice, ticket = DOC_TYPES["invoice"], DOC_TYPES["ticket"]
    assert invoice.field("invoice_number").cue.search("FACTURE N° 562044387")
    assert invoice.field("invoice_number").cue.search("Rechnungs-Nr.: INV80295")
    assert not invoice.field("invoice_number").cue.search("Order ID: OD304175096047380001")
    assert invoice.field("subtotal").cue.search("Sub-Total   12.00")
    assert not invoice.field("due_date").cue.search("Amount due: 12.00")  # that is amount_due's label
    assert invoice.field("amount_due").cue.search("Amount due: 12.00")
    assert not invoice.field("purchase_order").cue.search("Merci de votre commande.")
    assert ticket.field("order_id").cue.search("how can I cancel purchase 113542617735902?")
    assert not ticket.field("order_id").cue.search("I want to cancel my order")
    assert invoice.field("vendor_name").cue is None and invoice.field("total").cue is None


def test_clean_value_is_one_line():
    assert clean_value("  a\n b\t c ") == "a b c"


@settings(max_examples=60, deadline=None)
@given(country=st.sampled_from(sorted(IBAN_BBAN)), seed=st.integers(0, 10**6), grouped=st.booleans())
def test_an_iban_decodes_in_its_countrys_shape_and_length(country, seed, grouped):
    pattern = DOC_TYPES["invoice"].decode_schema["properties"]["iban"]["anyOf"][0]["pattern"]
    iban = make_iban(country, random.Random(seed))
    printed = group4(iban) if grouped else iban
    assert re.fullmatch(pattern, printed)
    assert not re.fullmatch(pattern, printed[:-1]), "one character short"
    assert not re.fullmatch(pattern, printed + "7"), "one character long"
    assert not re.fullmatch(pattern, printed + "  BTW 21"), "ran on into the next column"
    assert not re.fullmatch(pattern, "DEUTDEFF500") and not re.fullmatch(pattern, "CLWSGB22"), "a BIC"
