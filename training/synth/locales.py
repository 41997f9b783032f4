"""Locales: how numbers, dates and the words on a document look in each market.

A locale fixes the language of the labels, the number style, the date styles
in use and the currencies a vendor there plausibly bills in. Everything here
is data plus two pure formatting functions, so layouts never format by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

TWO = Decimal("0.01")

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
           "September", "Oktober", "November", "Dezember"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
           "september", "oktober", "november", "december"],
}


@dataclass(frozen=True)
class Locale:
    code: str            # Faker locale, e.g. "de_DE"
    lang: str            # ISO 639-1 of the labels
    country: str         # ISO 3166 alpha-2, drives IBAN and VAT id
    group: str           # thousands separator ("" = none)
    decimal: str
    date_styles: tuple[str, ...]
    currencies: tuple[str, ...]


LOCALES: dict[str, Locale] = {l.code: l for l in [
    Locale("en_GB", "en", "GB", ",", ".", ("dmy/", "d Month Y", "iso", "d Mon Y"), ("GBP", "GBP", "GBP", "EUR", "USD")),
    Locale("en_US", "en", "US", ",", ".", ("mdy/", "Month d, Y", "iso"), ("USD",)),
    Locale("en_IE", "en", "IE", ",", ".", ("dmy/", "d Month Y", "iso"), ("EUR",)),
    Locale("en_IN", "en", "IN", ",", ".", ("dmy/", "dmy-", "d Mon Y"), ("INR",)),
    Locale("sv_SE", "en", "SE", " ", ",", ("iso",), ("SEK", "EUR")),
    Locale("pl_PL", "en", "PL", " ", ",", ("dmy.", "iso"), ("PLN", "EUR")),
    Locale("de_DE", "de", "DE", ".", ",", ("dmy.", "d. Month Y", "iso"), ("EUR",)),
    Locale("de_AT", "de", "AT", ".", ",", ("dmy.", "d. Month Y"), ("EUR",)),
    Locale("de_CH", "de", "CH", "'", ".", ("dmy.", "d. Month Y"), ("CHF", "CHF", "EUR")),
    Locale("fr_FR", "fr", "FR", " ", ",", ("dmy/", "d Month Y"), ("EUR",)),
    Locale("fr_CH", "fr", "CH", "'", ".", ("dmy.", "d Month Y"), ("CHF",)),
    Locale("nl_NL", "nl", "NL", ".", ",", ("dmy-", "d Month Y", "iso"), ("EUR",)),
    Locale("nl_BE", "nl", "BE", ".", ",", ("dmy/", "d Month Y"), ("EUR",)),
]}

LANG_LOCALES = {lang: [l for l in LOCALES.values() if l.lang == lang] for lang in ("en", "de", "fr", "nl")}
# How often each locale is picked within its language (home markets more often).
LOCALE_WEIGHT = {"en_GB": 4, "en_US": 2, "en_IE": 1, "en_IN": 2, "sv_SE": 1, "pl_PL": 1, "de_DE": 4, "de_AT": 1, "de_CH": 1,
                 "fr_FR": 3, "fr_CH": 1, "nl_NL": 3, "nl_BE": 1}

# cp1252 core fonts have no ₹; Indian invoices print "Rs." as often anyway.
CURRENCY_SYMBOL = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF", "SEK": "kr", "PLN": "zł", "INR": "Rs."}


def q2(x: Decimal) -> Decimal:
    """Round half up to cents, as invoicing software does."""
    return Decimal(x).quantize(TWO, rounding=ROUND_HALF_UP)


def fmt_number(value: Decimal, loc: Locale, places: int = 2, group: bool = True) -> str:
    """Format *value* in the locale's style: 1,234.56 / 1.234,56 / 1 234,56 / 1'234.56."""
    value = Decimal(value)
    sign = "-" if value < 0 else ""
    text = f"{abs(value):.{places}f}"
    whole, _, frac = text.partition(".")
    if group and loc.group and len(whole) > 3:
        parts = []
        while len(whole) > 3:
            parts.insert(0, whole[-3:])
            whole = whole[:-3]
        parts.insert(0, whole)
        whole = loc.group.join(parts)
    return sign + whole + (loc.decimal + frac if places else "")


def fmt_quantity(value: Decimal, loc: Locale, style: str) -> str:
    """Quantities print as integers when whole, or with decimals in some software."""
    if style == "2dp":
        return fmt_number(value, loc, 2, group=False)
    places = max(0, -value.normalize().as_tuple().exponent)
    return fmt_number(value, loc, places, group=False)


def fmt_date(day: dt.date, style: str, lang: str) -> str:
    """Print a date in one of the named styles."""
    months = MONTHS[lang]
    if style == "iso":
        return day.isoformat()
    if style.startswith("dmy"):
        sep = style[3]
        return f"{day.day:02d}{sep}{day.month:02d}{sep}{day.year}"
    if style.startswith("mdy"):
        sep = style[3]
        return f"{day.month:02d}{sep}{day.day:02d}{sep}{day.year}"
    if style == "d Month Y":
        return f"{day.day} {months[day.month - 1]} {day.year}"
    if style == "d. Month Y":
        return f"{day.day}. {months[day.month - 1]} {day.year}"
    if style == "d Mon Y":
        return f"{day.day:02d} {months[day.month - 1][:3]} {day.year}"
    if style == "Month d, Y":
        return f"{months[day.month - 1]} {day.day}, {day.year}"
    raise ValueError(style)
