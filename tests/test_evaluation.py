"""The evaluation scorer on hand-made cases with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.settings import ROOT
from service.doctypes import load_document_types
from service.evaluation import (
    Example,
    auroc,
    clean_label,
    expected_calibration_error,
    infer_doc_type,
    load_dataset,
    run_eval,
    score_document,
    score_field,
    summarize,
)
from service.extract.result import Extraction, FieldResult

DOC_TYPES = load_document_types(ROOT / "config" / "schemas")
INVOICE, TICKET = DOC_TYPES["invoice"], DOC_TYPES["ticket"]
SHARED = Path("/work/shared/data")


def spec(doc_type, name):
    return doc_type.field(name)


# ------------------------------------------------------------------ metrics


def test_auroc_known_answers():
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.3, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [True, False, True, False]) == 0.5
    # one inversion out of 2x2 pairs
    assert auroc([0.9, 0.4, 0.5, 0.1], [True, True, False, False]) == 0.75
    assert auroc([0.9, 0.8], [True, True]) is None


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=60))
def test_auroc_matches_pairwise_definition(pairs):
    scores = np.array([p[0] for p in pairs])
    labels = np.array([p[1] for p in pairs])
    got = auroc(scores, labels)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        assert got is None
        return
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    assert got == pytest.approx(wins / (len(pos) * len(neg)))


def test_ece_known_answers():
    # Perfectly calibrated bins: 0.75 with 3/4 right, 0.25 with 1/4 right.
    confidences = [0.75] * 4 + [0.25] * 4
    correct = [True, True, True, False, True, False, False, False]
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([1.0, 1.0], [True, False]) == pytest.approx(0.5)
    # Two equally full bins, off by 0.45 and 0.05.
    assert expected_calibration_error([0.95, 0.95, 0.05, 0.05], [True, False, False, False]) == pytest.approx(
        0.5 * 0.45 + 0.5 * 0.05
    )
    assert expected_calibration_error([], []) is None


# ------------------------------------------------------------------ field scoring


@pytest.mark.parametrize(
    "doc_type, field, predicted, expected, ok",
    [
        (INVOICE, "total", 9.0, "9.00", True),
        (INVOICE, "total", 9.01, 9.0, True),
        (INVOICE, "total", 9.02, 9.0, False),
        (INVOICE, "total", "RM 9.00", "9.00", True),
        (INVOICE, "total", None, 9.0, False),
        (INVOICE, "invoice_date", "2018-12-25", "25/12/2018", True),
        (INVOICE, "invoice_date", "2018-03-14", "14 MAR 2018", True),
        (INVOICE, "invoice_date", "2018-12-24", "25/12/2018", False),
        (INVOICE, "vendor_name", "book ta .k  (taman daya) sdn bhd", "BOOK TA .K (TAMAN DAYA) SDN BHD", True),
        (INVOICE, "vendor_name", "BOOK TA K", "BOOK TA .K", False),
        (INVOICE, "currency", "usd", "USD", True),
        (INVOICE, "invoice_number", "BLR_WFLD20151000982590", "#BLR_WFLD20151000982590", True),
        (INVOICE, "invoice_number", "# invoice_number_1", "invoice_number_1", True),
        (INVOICE, "invoice_number", "# 1", "invoice_number_1", False),
        (TICKET, "invoice_id", "85632", "#85632", True),
        (TICKET, "invoice_id", "108", "#00108", True),
        (TICKET, "order_id", "00123842", "123842", True),
        (TICKET, "order_id", "123843", "123842", False),
        (TICKET, "customer_name", "0 Bond", "Bond", False),  # not an id: zeros are kept
        (TICKET, "category", "shipping_address", "SHIPPING_ADDRESS", True),
        (TICKET, "category", "order", "REFUND", False),
    ],
)
def test_score_field(doc_type, field, predicted, expected, ok):
    assert score_field(spec(doc_type, field), predicted, expected) is ok


def test_line_items_scored_only_in_our_format():
    lines = spec(INVOICE, "line_items")
    foreign = [{"name": "AWS Data Transfer", "price_unit": "0.01"}]
    assert clean_label(lines, foreign) is None  # invoice2data rows: unlabelled
    ours = [{"description": "Widget", "amount": "1.234,50"}]
    label = clean_label(lines, ours)
    assert label == [{"description": "Widget", "quantity": None, "unit_price": None, "amount": 1234.5}]
    predicted = [{"description": "widget", "quantity": 1.0, "unit_price": 1234.5, "amount": 1234.5}]
    assert score_field(lines, predicted, label)
    assert not score_field(lines, predicted * 2, label)
    assert not score_field(lines, [{**predicted[0], "amount": 1.0}], label)


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_labels_are_unlabelled(blank):
    assert clean_label(spec(INVOICE, "total"), blank) is None


# ------------------------------------------------------------------ loading


def test_load_dataset_with_paths_and_inline_text(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("ACME\nTotal 9.00")
    rows = [
        {"id": "a", "input": "docs/a.txt", "doc_type": "receipt", "vendor_name": "ACME", "total": "9.00",
         "invoice_date": "25/12/2018", "tax": None, "_source_fields": ["x"]},
        {"id": "b", "text": "inline", "total": "", "line_items": [{"name": "x"}]},
    ]
    data = tmp_path / "normalized.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a, b = load_dataset(data, INVOICE)
    assert a.source == (tmp_path / "docs" / "a.txt").resolve() and a.source.exists()
    assert a.labels == {"vendor_name": "ACME", "invoice_date": "2018-12-25", "total": 9.0}
    assert b.source == "inline" and b.labels == {}


@pytest.mark.parametrize("folder, doc_type", [("sroie", "invoice"), ("invoice2data", "invoice"), ("bitext", "ticket")])
def test_doc_type_is_inferred_from_the_rows(folder, doc_type):
    path = SHARED / folder / "normalized.jsonl"
    if not path.exists():
        pytest.skip("shared data not present")
    assert infer_doc_type(path, DOC_TYPES).name == doc_type


def test_doc_type_inference_fails_loudly_on_foreign_labels(tmp_path):
    data = tmp_path / "x.jsonl"
    data.write_text(json.dumps({"id": 1, "text": "t", "colour": "red"}))
    with pytest.raises(ValueError):
        infer_doc_type(data, DOC_TYPES)


def test_load_dataset_rejects_a_row_without_input():
    with pytest.raises(ValueError):
        from service.evaluation import _source_of

        _source_of({"id": "x"}, Path("."), 1)


@pytest.mark.parametrize("folder, doc_type", [("sroie", "invoice"), ("invoice2data", "invoice"), ("bitext", "ticket")])
def test_shared_datasets_load(folder, doc_type):
    path = SHARED / folder / "normalized.jsonl"
    if not path.exists():
        pytest.skip("shared data not present")
    examples = load_dataset(path, DOC_TYPES[doc_type])
    assert examples and all(e.labels for e in examples)
    for e in examples:
        assert isinstance(e.source, str) or e.source.exists()
    if doc_type == "ticket":
        categories = {e.labels["category"] for e in examples}
        assert categories <= set(DOC_TYPES["ticket"].field("category").enum)


# ------------------------------------------------------------------ documents and reports


def ticket_extraction(values: dict, confidence: dict | float = 0.99) -> Extraction:
    fields = {}
    for field_spec in TICKET.fields:
        conf = confidence.get(field_spec.name, 0.99) if isinstance(confidence, dict) else confidence
        fields[field_spec.name] = FieldResult(values.get(field_spec.name), confidence=conf)
    return Extraction("ticket", fields, "test")


BASE = {"category": "order", "priority": "low", "sentiment": "neutral", "language": "en", "summary": "s"}


def test_score_document_counts_only_labelled_fields():
    example = Example("1", "text", {"order_id": "#00123", "category": "order"})
    record = score_document(TICKET, example, ticket_extraction({**BASE, "order_id": "123"}))
    assert [(o.field, o.correct) for o in record.outcomes] == [("order_id", True), ("category", True)]


def test_failed_rules_lower_confidence_before_scoring_but_not_the_callers_object():
    example = Example("1", "text", {"customer_email": "a@b.de"})
    answer = ticket_extraction({**BASE, "customer_email": "not-an-email"}, 0.8)
    record = score_document(TICKET, example, answer)
    assert [f.name for f in record.failures] == ["format_email"]
    assert record.outcomes[0].confidence == pytest.approx(0.4)
    assert answer.fields["customer_email"].confidence == 0.8


def test_summary_with_known_answers():
    examples = [Example(str(i), "t", {"order_id": str(i), "category": "order"}) for i in range(4)]
    answers = [
        ticket_extraction({**BASE, "order_id": "0"}, {"order_id": 0.99}),  # right, confident
        ticket_extraction({**BASE, "order_id": "1"}, {"order_id": 0.95}),  # right
        ticket_extraction({**BASE, "order_id": "9"}, {"order_id": 0.60}),  # wrong, unsure
        ticket_extraction({**BASE, "order_id": None}, {"order_id": 0.50}),  # wrongly null
    ]
    records = [score_document(TICKET, e, a) for e, a in zip(examples, answers)]
    report = summarize(records)
    order = report.fields["order_id"]
    assert (order.labelled, order.correct, order.accuracy, order.null_rate, order.auroc) == (4, 2, 0.5, 0.25, 1.0)
    assert order.threshold == 0.95
    assert report.fields["category"].accuracy == 1.0 and report.fields["category"].auroc is None
    assert report.overall.labelled == 8 and report.overall.accuracy == 0.75
    # Straight through: the first two clear 0.95; the third does not. The fourth's order_id is
    # null, and a null optional field needs no threshold, so it goes through (wrongly): 3 of 4.
    assert report.straight_through == 0.75
    assert report.straight_through_precision == pytest.approx(5 / 6)
    data = report.to_dict()
    assert data["fields"]["order_id"]["accuracy"] == 0.5 and data["thresholds_in_sample"] is True
    json.dumps(data)
    assert "per_document" not in data
    documents = report.to_dict(include_documents=True)["per_document"]
    assert [d["route"] for d in documents] == ["straight_through", "straight_through", "review", "straight_through"]
    assert documents[2]["fields"][0] == {
        "field": "order_id", "expected": "2", "predicted": "9", "confidence": 0.6, "correct": False
    }
    json.dumps(documents)
    text = report.to_text()
    assert "order_id" in text and "straight through" in text


def test_given_thresholds_are_used_as_is():
    examples = [Example("1", "t", {"category": "order"})]
    records = [score_document(TICKET, examples[0], ticket_extraction(BASE, 0.8))]
    assert summarize(records, thresholds={}, default_threshold=0.9).straight_through == 0.0
    assert summarize(records, thresholds={}, default_threshold=0.5).straight_through == 1.0


def test_run_eval_with_a_fake_extractor_and_a_failing_document(tmp_path):
    rows = [
        {"id": "ok", "text": "cancel order 123", "category": "ORDER", "order_id": "123"},
        {"id": "boom", "text": "explode", "category": "REFUND"},
    ]
    data = tmp_path / "normalized.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    calls = []

    def extract(doc_type_name, source):
        calls.append((doc_type_name, source))
        if source == "explode":
            raise RuntimeError("engine fell over")
        return ticket_extraction({**BASE, "order_id": "123"}).to_dict()  # the JSON form works too

    report = run_eval(extract, data)  # the type is inferred from the labels
    assert calls == [("ticket", "cancel order 123"), ("ticket", "explode")]
    assert report.documents == 2 and report.errors == 1
    assert report.fields["category"].accuracy == 0.5 and report.fields["category"].null_rate == 0.5
    assert report.fields["order_id"].accuracy == 1.0
    assert report.records[1].error == "RuntimeError: engine fell over"

    only_ok = run_eval(extract, data, "ticket", include=lambda e: e.id == "ok")
    assert only_ok.documents == 1 and only_ok.errors == 0
    assert run_eval(extract, data, "ticket", limit=1).documents == 1
    assert load_dataset(data, TICKET)[0].dataset == tmp_path.name


def test_pure_stages_import_no_framework():
    """normalize, validate, routing and evaluation add no web, database, queue or torch imports."""
    import subprocess
    import sys

    code = (
        "import sys, service\n"
        "before = set(sys.modules)\n"
        "import service.normalize, service.validate, service.routing, service.evaluation\n"
        "added = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(added & {'flask', 'sqlalchemy', 'rq', 'redis', 'torch', 'onnxruntime', 'sklearn'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
