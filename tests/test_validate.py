"""Validation: field formats and the schema's cross-field rules, hand-made and property-based."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.settings import ROOT
from service.doctypes import DocumentType, load_document_types
from service.extract.result import Extraction, FieldResult
from service.validate import (
    FORMAT_CHECKS,
    RuleFailure,
    apply_rule_failures,
    is_email,
    is_iban,
    is_vat_id,
    validate,
)

DOC_TYPES = load_document_types(ROOT / "config" / "schemas")
INVOICE, TICKET = DOC_TYPES["invoice"], DOC_TYPES["ticket"]


def names(failures: list[RuleFailure]) -> set[str]:
    return {f.name for f in failures}


def invoice(**overrides):
    values = {spec.name: None for spec in INVOICE.fields}
    values.update(
        vendor_name="ACME GmbH",
        vendor_tax_id="DE136695976",
        invoice_date="2024-03-14",
        due_date="2024-04-13",
        currency="EUR",
        subtotal=100.0,
        tax=19.0,
        total=119.0,
        iban="DE89 3704 0044 0532 0130 00",
        line_items=[
            {"description": "Widget", "quantity": 2.0, "unit_price": 30.0, "amount": 60.0},
            {"description": "Gadget", "quantity": 1.0, "unit_price": 40.0, "amount": 40.0},
        ],
    )
    values.update(overrides)
    return values


def ticket(**overrides):
    values = {spec.name: None for spec in TICKET.fields}
    values.update(
        customer_email="jane.doe@example.com", category="refund", priority="high", sentiment="negative", language="en",
        summary="Wants a refund.",
    )
    values.update(overrides)
    return values


# ------------------------------------------------------------------ a clean document


def test_a_consistent_invoice_passes():
    assert validate(INVOICE, invoice()) == []


def test_a_consistent_ticket_passes():
    assert validate(TICKET, ticket()) == []


def test_shipped_schemas_only_use_known_rule_kinds_and_formats():
    for doc_type in DOC_TYPES.values():
        validate(doc_type, {})  # raises on an unknown rule kind
        for spec in doc_type.fields:
            assert spec.format is None or spec.format in FORMAT_CHECKS, (doc_type.name, spec.name)


# ------------------------------------------------------------------ each cross-field rule


def test_subtotal_plus_tax_is_total():
    failures = validate(INVOICE, invoice(total=120.0))
    assert names(failures) == {"subtotal_plus_tax_is_total"}
    (failure,) = failures
    assert set(failure.fields) == {"subtotal", "tax", "total"}
    assert "subtotal" in failure.message


def test_line_items_sum_to_subtotal():
    failures = validate(INVOICE, invoice(subtotal=101.0, total=120.0))
    assert names(failures) == {"line_items_sum_to_subtotal"}
    assert set(failures[0].fields) == {"line_items", "subtotal"}


def test_due_date_not_before_invoice_date():
    failures = validate(INVOICE, invoice(due_date="2024-03-13"))
    assert names(failures) == {"due_date_not_before_invoice_date"}
    assert failures[0].fields == ("due_date", "invoice_date")
    assert validate(INVOICE, invoice(due_date="2024-03-14")) == []  # same day is fine


def test_rounding_tolerance():
    assert validate(INVOICE, invoice(total=119.02)) == []
    assert names(validate(INVOICE, invoice(total=119.03))) == {"subtotal_plus_tax_is_total"}
    assert validate(INVOICE, invoice(total=119.5), tolerance=0.5) == []


@pytest.mark.parametrize("null_field", ["subtotal", "tax", "total"])
def test_sum_rule_is_skipped_when_an_input_is_null(null_field):
    values = invoice(total=999.0)
    values[null_field] = None
    assert "subtotal_plus_tax_is_total" not in names(validate(INVOICE, values))


def test_line_rule_skipped_without_lines_or_with_a_null_line_amount():
    assert validate(INVOICE, invoice(line_items=[])) == []
    assert validate(INVOICE, invoice(line_items=None)) == []
    rows = invoice()["line_items"]
    rows[0]["amount"] = None
    assert validate(INVOICE, invoice(line_items=rows, subtotal=5.0, total=24.0)) == []


def test_not_before_skipped_when_a_date_is_null():
    assert validate(INVOICE, invoice(due_date=None)) == []


def test_lines_may_sum_to_the_total_when_subtotal_is_null():
    """Receipts print gross line amounts and no subtotal: derived subtotal = total - tax, or total."""
    assert validate(INVOICE, invoice(subtotal=None, tax=19.0, total=100.0)) == []  # gross lines
    assert validate(INVOICE, invoice(subtotal=None, tax=19.0, total=119.0)) == []  # net lines
    failures = validate(INVOICE, invoice(subtotal=None, tax=19.0, total=150.0))
    assert names(failures) == {"line_items_sum_to_subtotal"}
    assert set(failures[0].fields) == {"line_items", "subtotal", "tax", "total"}


def test_lines_rule_skipped_when_subtotal_cannot_be_derived():
    assert validate(INVOICE, invoice(subtotal=None, tax=None, total=150.0)) == []


# ------------------------------------------------------------------ each field format


@pytest.mark.parametrize(
    "field, bad, rule",
    [
        ("invoice_date", "2024-02-30", "format_date"),
        ("due_date", "14/03/2024", "format_date"),
        ("currency", "EUX", "format_iso4217"),
        ("iban", "DE89 3704 0044 0532 0130 01", "format_iban"),
        ("vendor_tax_id", "DE136695977", "format_vat-id"),
        ("vendor_tax_id", "hello", "format_vat-id"),
        ("total", "119.00", "number"),
    ],
)
def test_invoice_format_failures(field, bad, rule):
    failures = [f for f in validate(INVOICE, invoice(**{field: bad})) if f.name == rule]
    assert failures and failures[0].fields == (field,)


@pytest.mark.parametrize(
    "field, bad, rule",
    [
        ("customer_email", "jane.doe@", "format_email"),
        ("customer_email", "jane doe@example.com", "format_email"),
        ("language", "xx", "format_iso639-1"),
        ("category", "complaints", "enum"),
        ("priority", "HIGH", "enum"),
    ],
)
def test_ticket_format_failures(field, bad, rule):
    assert [f.fields for f in validate(TICKET, ticket(**{field: bad})) if f.name == rule] == [(field,)]


def test_formats_in_array_rows_are_reported_on_the_array():
    doc = DocumentType.from_schema(
        "dated_lines",
        {"properties": {"rows": {"type": "array", "items": {"properties": {"day": {"type": "string", "format": "date"}}}}}},
    )
    (failure,) = validate(doc, {"rows": [{"day": "2024-01-01"}, {"day": "2024-13-01"}]})
    assert failure.name == "format_date" and failure.fields == ("rows",) and "rows[].day" in failure.message


@pytest.mark.parametrize(
    "vat_id, ok",
    [
        ("DE136695976", True),
        ("DE 136 695 976", True),
        ("NL004495445B01", True),
        ("EL094259216", True),
        ("GB980780684", True),
        ("CHE-107.787.577 MWST", True),
        ("CHE-107.787.577", True),  # the same UID without its VAT suffix
        ("CHE-107.787.578", False),
        ("29ABCDE1234F1Z5", True),  # Indian GSTIN: no country prefix, shape only
        ("51 824 753 556", True),  # Australian ABN
        ("12-3456789", True),  # US EIN
        ("DE136695977", False),  # bad checksum
        ("GB980780685", False),
        ("hello", False),
        ("123", False),
        ("12 34 ab !!", False),
    ],
)
def test_vat_id_shapes(vat_id, ok):
    assert is_vat_id(vat_id) is ok


def test_iban_and_email_checks():
    assert is_iban("NL91ABNA0417164300") and not is_iban("NL91ABNA0417164301")
    assert is_email("a.b@shop.de") and not is_email("a@b") and not is_email(42)


# ------------------------------------------------------------------ properties

cents = st.integers(min_value=-(10**7), max_value=10**8).map(lambda c: Decimal(c) / 100)


@st.composite
def consistent_invoices(draw):
    line_amounts = draw(st.lists(cents, min_size=1, max_size=30))
    tax = draw(cents)
    subtotal = sum(line_amounts, Decimal(0))
    day = draw(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 1, 1)))
    due = day + dt.timedelta(days=draw(st.integers(0, 120)))
    rows = [{"description": f"line {i}", "quantity": None, "unit_price": None, "amount": float(a)} for i, a in enumerate(line_amounts)]
    return invoice(
        line_items=rows, subtotal=float(subtotal), tax=float(tax), total=float(subtotal + tax),
        invoice_date=day.isoformat(), due_date=due.isoformat(),
    )


@given(consistent_invoices())
def test_consistent_invoices_pass(values):
    assert validate(INVOICE, values) == []


@given(consistent_invoices(), st.decimals(min_value=Decimal("0.03"), max_value=Decimal(100000), places=2))
def test_perturbing_the_total_fails_the_total_rule(values, delta):
    values["total"] += float(delta) * (1 if int(delta * 100) % 2 else -1)
    assert names(validate(INVOICE, values)) == {"subtotal_plus_tax_is_total"}


@given(consistent_invoices(), st.integers(1, 365))
def test_due_before_issue_fails(values, days_back):
    issued = dt.date.fromisoformat(values["invoice_date"])
    values["due_date"] = (issued - dt.timedelta(days=days_back)).isoformat()
    assert names(validate(INVOICE, values)) == {"due_date_not_before_invoice_date"}


@given(st.dictionaries(st.sampled_from([s.name for s in INVOICE.fields]), st.none() | st.text(max_size=12) | st.floats() | st.integers()))
def test_validate_never_raises_on_junk(values):
    assert all(isinstance(f, RuleFailure) for f in validate(INVOICE, values))


@given(st.text(max_size=30))
def test_format_checks_never_raise(text):
    for check in FORMAT_CHECKS.values():
        assert check(text) in (True, False)


# ------------------------------------------------------------------ consequences


def _extraction(values, confidence=0.9):
    fields = {}
    for name, value in values.items():
        items = None
        if isinstance(value, list):
            items = [{k: FieldResult(v, confidence=confidence) for k, v in row.items()} for row in value]
        fields[name] = FieldResult(value, confidence=confidence, items=items)
    return Extraction("invoice", fields, "test")


def test_apply_rule_failures_lowers_involved_fields_once_and_names_the_rules():
    values = invoice(subtotal=101.0, total=130.0)  # both sum rules fail; subtotal is in both
    failures = validate(INVOICE, values)
    assert names(failures) == {"line_items_sum_to_subtotal", "subtotal_plus_tax_is_total"}
    extraction = apply_rule_failures(_extraction(values), failures, penalty=0.5)
    fields = extraction.fields
    assert fields["subtotal"].confidence == pytest.approx(0.45)
    assert sorted(fields["subtotal"].problems) == ["line_items_sum_to_subtotal", "subtotal_plus_tax_is_total"]
    assert fields["total"].confidence == pytest.approx(0.45) and fields["total"].problems == ["subtotal_plus_tax_is_total"]
    assert fields["line_items"].confidence == pytest.approx(0.45)
    assert all(cell.confidence == pytest.approx(0.45) for row in fields["line_items"].items for cell in row.values())
    assert fields["vendor_name"].confidence == 0.9 and fields["vendor_name"].problems == []


def test_apply_rule_failures_ignores_fields_the_extraction_lacks():
    extraction = _extraction({"total": 1.0})
    apply_rule_failures(extraction, [RuleFailure("r", ("total", "missing"), "m")])
    assert extraction.fields["total"].problems == ["r"]
