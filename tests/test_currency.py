"""The currency a document prints: marks, the one currency they name, and the evidence for a code."""

from __future__ import annotations

import pytest

from service.extract.currency import evidence_for, printed_currencies, the_currency


def _codes(text: str) -> list[str]:
    return [m.code for m in printed_currencies(text)]


@pytest.mark.parametrize(
    "text, code, assumed",
    [
        ("Total 24,99 €", "EUR", False),
        ("Montant TTC 24,99 EUR", "EUR", False),
        ("Grand Total Rs. 1,299.00", "INR", False),
        ("Razem 1 234,00 zł", "PLN", False),
        ("TOTAL RM 9.00", "MYR", False),
        ("Amount due $4.11", "USD", True),
        ("Amount due $4.11 (all prices in USD)", "USD", False),
        ("Total S$ 12.00", "SGD", False),
        ("Subtotal £10.00\nVAT £2.00", "GBP", False),
        ("Celkem 1 500,00 CZK", "CZK", False),
    ],
)
def test_one_printed_currency_is_the_answer(text, code, assumed):
    mark = the_currency(printed_currencies(text))
    assert mark is not None and mark.code == code and mark.assumed is assumed
    assert text[mark.start : mark.end] in text


@pytest.mark.parametrize(
    "text",
    [
        "Total 12.00",  # nothing printed
        "Price 10 € or $12",  # two currencies
        "EUR 10.00 / GBP 8.50",
    ],
)
def test_no_single_currency_means_no_answer(text):
    assert the_currency(printed_currencies(text)) is None


def test_words_and_identifiers_are_not_currencies():
    # "ALL" is Albania's lek and "GEL" Georgia's lari, but here a word and part of a BIC
    assert _codes("ALL ITEMS SOLD AS SEEN") == []
    assert _codes("BIC HELADEF1GEL") == []
    assert _codes("Rsvp by Friday") == []  # "Rs" only as a word of its own
    assert _codes("10.00 ALL") == ["ALL"]  # an ISO code beside an amount counts


def test_a_code_finds_its_evidence():
    marks = printed_currencies("Net 10,00 €\nTotal EUR 12,00")
    assert evidence_for("EUR", marks).start == "Net 10,00 €".index("€")
    assert evidence_for("USD", marks) is None
