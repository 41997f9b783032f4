"""The currency a document is billed in, as its text prints it.

An invoice rarely names its currency with a label; it prints "€" beside every
amount, or "EUR" once in the totals, or "Rs." on an Indian bill. That is the
evidence for a currency code, and when the model leaves the code null while
the text prints exactly one currency, it is the answer: reading "€" as EUR is
plain lookup, not judgement. A bare "$" is read as USD but marked assumed
(Canada, Australia, Singapore … print it too), so its confidence is lowered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.validate import is_currency_code

# Symbols and local abbreviations that name one currency each.
SYMBOLS = {
    "€": "EUR",
    "£": "GBP",
    "₹": "INR",
    "Rs.": "INR",
    "Rs": "INR",
    "zł": "PLN",
    "RM": "MYR",
    "US$": "USD",
    "CA$": "CAD",
    "C$": "CAD",
    "A$": "AUD",
    "AU$": "AUD",
    "NZ$": "NZD",
    "S$": "SGD",
    "HK$": "HKD",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₪": "ILS",
    "฿": "THB",
    "₫": "VND",
    "₱": "PHP",
}
DOLLAR = "$"
ASSUMED_FOR_DOLLAR = "USD"
# ISO codes common enough to trust as a whole upper-case word anywhere in the text;
# any other ISO code counts only printed next to an amount ("1.234,00 CZK").
COMMON_CODES = frozenset(
    "EUR USD GBP CHF INR PLN CZK HUF SEK NOK DKK MYR SGD AUD CAD NZD JPY CNY HKD ZAR BRL MXN RON BGN TRY AED".split()
)

_SYMBOL_RE = re.compile(
    "|".join(
        rf"(?<![A-Za-z]){re.escape(s)}(?![A-Za-z])" if s[0].isalpha() else re.escape(s)
        for s in sorted([*SYMBOLS, DOLLAR], key=len, reverse=True)
    )
)
_CODE_RE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")
_AMOUNT_NEAR = re.compile(r"\d[\d.,]*\s?$|^\s?\d")


@dataclass(frozen=True)
class PrintedCurrency:
    code: str
    start: int
    end: int
    assumed: bool  # read from a bare "$"


def printed_currencies(text: str) -> list[PrintedCurrency]:
    """Every currency mark in *text*, in order: codes, then symbols that name one currency."""
    marks: list[PrintedCurrency] = []
    for match in _CODE_RE.finditer(text):
        code = match.group(1)
        near = text[max(0, match.start() - 12) : match.start()], text[match.end() : match.end() + 12]
        glued = text[match.start() - 1 : match.start()].isdigit() or text[match.end() : match.end() + 1].isdigit()
        trusted = code in COMMON_CODES or (
            not glued and bool(_AMOUNT_NEAR.search(near[0]) or _AMOUNT_NEAR.search(near[1])) and is_currency_code(code)
        )
        if trusted:
            marks.append(PrintedCurrency(code, match.start(), match.end(), False))
    for match in _SYMBOL_RE.finditer(text):
        mark = match.group(0)
        code = ASSUMED_FOR_DOLLAR if mark == DOLLAR else SYMBOLS[mark]
        marks.append(PrintedCurrency(code, match.start(), match.end(), mark == DOLLAR))
    return sorted(marks, key=lambda m: m.start)


def the_currency(marks: list[PrintedCurrency]) -> PrintedCurrency | None:
    """The one currency the marks name, or None when they name none or several.

    A bare "$" gives way to a named dollar ("USD", "CA$") printed elsewhere.
    """
    named = {m.code for m in marks if not m.assumed}
    if len(named) == 1:
        code = named.pop()
        if any(m.assumed for m in marks) and not code.endswith("D"):
            return None  # "$" beside "€": two currencies
        return next(m for m in marks if m.code == code and not m.assumed)
    if not named and marks:
        return marks[0]
    return None


def evidence_for(code: str, marks: list[PrintedCurrency]) -> PrintedCurrency | None:
    """The first mark in the text that names *code* (a bare "$" counts for USD)."""
    return next((m for m in marks if m.code == code), None)
