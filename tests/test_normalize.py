"""Normalisers: printed amounts and dates back to values, exactly and without exceptions."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import ROOT
from service.doctypes import PRINTED_DATE_PATTERN, load_document_types
from service.normalize import MONTHS, normalize_amount, normalize_date, normalize_field

DOC_TYPES = load_document_types(ROOT / "config" / "schemas")

# ------------------------------------------------------------------ amounts


def _group(digits: str, sep: str) -> str:
    groups = []
    while len(digits) > 3:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    groups.insert(0, digits)
    return sep.join(groups)


# (thousands separator, decimal separator) as printed across locales.
AMOUNT_STYLES = [
    (",", "."),  # en: 1,234.56
    (".", ","),  # de/nl/…: 1.234,56
    (" ", ","),  # fr: 1 234,56
    ("\u202f", ","),  # fr with narrow no-break space
    ("\u00a0", ","),
    ("'", "."),  # ch: 1'234.56
    ("", "."),  # plain
    ("", ","),
]
CURRENCY_DECORATIONS = ["{}", "{} €", "€{}", "EUR {}", "{} EUR", "RM {}", "RM{}", "${}", "US$ {}", "{} zł", "Rs. {}"]


def format_amount(value: Decimal, thousands: str, decimal: str) -> str:
    sign, digits = ("-", -value) if value < 0 else ("", value)
    integer, _, fraction = f"{digits:f}".partition(".")
    text = _group(integer, thousands) if thousands else integer
    return sign + (f"{text}{decimal}{fraction}" if fraction else text)


amounts = st.decimals(min_value=Decimal("-9999999.99"), max_value=Decimal("9999999.99"), places=2, allow_nan=False)


@given(
    value=amounts,
    places=st.sampled_from([0, 1, 2]),
    style=st.sampled_from(AMOUNT_STYLES),
    decoration=st.sampled_from(CURRENCY_DECORATIONS),
)
def test_amount_round_trips_in_every_locale_style(value, places, style, decoration):
    value = value.quantize(Decimal(1).scaleb(-places))
    printed = decoration.format(format_amount(value, *style))
    assert normalize_amount(printed) == float(value), printed


@given(value=amounts.filter(lambda v: v != 0), style=st.sampled_from(AMOUNT_STYLES))
def test_parenthesised_and_trailing_minus_are_negative(value, style):
    printed = format_amount(abs(value), *style)
    assert normalize_amount(f"({printed})") == -float(abs(value))
    assert normalize_amount(f"{printed}-") == -float(abs(value))
    assert normalize_amount(f"\u2212{printed}") == -float(abs(value))


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**12), 10**12))
def test_amount_is_idempotent_on_numbers(value):
    assert normalize_amount(value) == float(value)
    assert normalize_amount(normalize_amount(value)) == normalize_amount(value)


@given(amounts)
def test_amount_reads_its_own_canonical_text(value):
    assert normalize_amount(str(float(value))) == float(value)


@given(st.text(max_size=40))
def test_amount_never_raises(text):
    result = normalize_amount(text)
    assert result is None or isinstance(result, float)


@pytest.mark.parametrize(
    "printed, expected",
    [
        ("1.234,56", 1234.56),
        ("1,234.56", 1234.56),
        ("1 234,56 €", 1234.56),
        ("-45.00", -45.0),
        ("RM 9.00", 9.0),
        ("$6.90", 6.9),
        ("(1,234.56)", -1234.56),
        ("1.234", 1234.0),  # a single separator before three digits groups thousands
        ("1,234", 1234.0),
        ("0,125", 0.125),  # …unless the part before it cannot be a group
        ("1234.567", 1234.567),
        ("1.234,567", 1234.567),  # both separators: the last one is decimal
        ("1,00,000.00", 100000.0),  # Indian grouping
        (".50", 0.5),
        ("€ -45,00", -45.0),
        ("+12.5", 12.5),
        ("45.00 CR", -45.0),  # credit notes
        ("EUR 45,00 CR", -45.0),
    ],
)
def test_amount_examples(printed, expected):
    assert normalize_amount(printed) == expected


@pytest.mark.parametrize(
    "garbage",
    ["", "abc", "1.2.3", "12 34", "1,2345,678", "(45", "45)", "--45", "€", "12:30", None, True, [], {}, float("nan"), "1e5"],
)
def test_amount_garbage_is_none(garbage):
    assert normalize_amount(garbage) is None


# -------------------------------------------------------------------- dates

MONTH_NAMES = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
    "en_abbr": ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"],
    "de_abbr": ["Jan.", "Feb.", "Mrz.", "Apr.", "Mai", "Jun.", "Jul.", "Aug.", "Sep.", "Okt.", "Nov.", "Dez."],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"],
    "fr_abbr": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober", "november", "december"],
    "nl_abbr": ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
    "ms": ["Januari", "Februari", "Mac", "April", "Mei", "Jun", "Julai", "Ogos", "September", "Oktober", "November", "Disember"],
}


def _named_styles():
    for names in MONTH_NAMES.values():
        yield lambda d, n=names: f"{d.day} {n[d.month - 1]} {d.year}"
        yield lambda d, n=names: f"{d.day:02d}-{n[d.month - 1]}-{d.year}"
        yield lambda d, n=names: f"{d.day}. {n[d.month - 1]} {d.year}"
    yield lambda d: f"{MONTH_NAMES['en'][d.month - 1]} {d.day}, {d.year}"
    yield lambda d: f"{MONTH_NAMES['en_abbr'][d.month - 1]} {d.day}, {d.year}"
    yield lambda d: f"{d.year} {MONTH_NAMES['en'][d.month - 1]} {d.day}"
    yield lambda d: f"{d.day:02d}/{MONTH_NAMES['en_abbr'][d.month - 1]}/{d.year}"


NUMERIC_DAY_FIRST = [
    "{d.day:02d}/{d.month:02d}/{d.year}",
    "{d.day}/{d.month}/{d.year}",
    "{d.day:02d}.{d.month:02d}.{d.year}",
    "{d.day:02d}-{d.month:02d}-{d.year}",
    "{d.year}-{d.month:02d}-{d.day:02d}",
    "{d.year}/{d.month:02d}/{d.day:02d}",
    "{d.year}{d.month:02d}{d.day:02d}",
]
dates = st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2069, 12, 31))


@given(dates, st.sampled_from(list(_named_styles())))
def test_date_round_trips_with_month_names(day, style):
    assert normalize_date(style(day)) == day.isoformat(), style(day)


@given(dates, st.sampled_from(NUMERIC_DAY_FIRST))
def test_numeric_date_round_trips_day_first(day, style):
    assert normalize_date(style.format(d=day)) == day.isoformat()


@given(dates)
def test_two_digit_years_round_trip(day):
    assert normalize_date(f"{day.day:02d}/{day.month:02d}/{day.year % 100:02d}") == day.isoformat()
    assert normalize_date(f"{day.day:02d} {MONTH_NAMES['en_abbr'][day.month - 1]} {day.year % 100:02d}") == day.isoformat()


@given(dates.filter(lambda d: d.day > 12))
def test_month_first_is_read_when_unambiguous(day):
    assert normalize_date(f"{day.month:02d}/{day.day:02d}/{day.year}") == day.isoformat()


@given(dates)
def test_month_first_when_asked(day):
    assert normalize_date(f"{day.month:02d}/{day.day:02d}/{day.year}", day_first=False) == day.isoformat()


@given(dates)
def test_date_is_idempotent(day):
    iso = day.isoformat()
    assert normalize_date(iso) == iso
    assert normalize_date(normalize_date(iso)) == iso
    assert normalize_date(day) == iso
    assert normalize_date(dt.datetime(day.year, day.month, day.day, 10, 30)) == iso


@given(st.text(max_size=40))
@settings(max_examples=300)
def test_date_never_raises(text):
    result = normalize_date(text)
    assert result is None or dt.date.fromisoformat(result)


@pytest.mark.parametrize(
    "printed, expected",
    [
        ("25/12/2018", "2018-12-25"),
        ("14 MAR 2018", "2018-03-14"),
        ("12-01-19", "2019-01-12"),
        ("14. März 2024", "2024-03-14"),
        ("14. Maerz 2024", "2024-03-14"),
        ("14 mars 2024", "2024-03-14"),
        ("14 maart 2024", "2024-03-14"),
        ("14 Mac 2024", "2024-03-14"),
        ("March 14, 2024", "2024-03-14"),
        ("August 3 , 2014", "2014-08-03"),  # layout text spaces the comma off (invoice2data's AWS invoice)
        ("2024-03-14", "2024-03-14"),
        ("03/14/2024", "2024-03-14"),
        ("03/04/2024", "2024-04-03"),  # ambiguous: day first
        ("20180304", "2018-03-04"),
        ("25032018", "2018-03-25"),
        ("1er août 2024", "2024-08-01"),
        ("Monday, 3rd June 2024", "2024-06-03"),
        ("25/12/2018 10:30 PM", "2018-12-25"),
        ("2024-03-14T10:00:00Z", "2024-03-14"),
        ("31-12-69", "2069-12-31"),
        ("01-01-70", "1970-01-01"),
    ],
)
def test_date_examples(printed, expected):
    assert normalize_date(printed) == expected
    assert re.fullmatch(PRINTED_DATE_PATTERN, printed), "the decoder could not write this date"


@given(dates, st.sampled_from([*_named_styles(), *(lambda d, f=f: f.format(d=d) for f in NUMERIC_DAY_FIRST)]))
def test_the_decoder_can_write_every_date_shape_normalisation_reads(day, style):
    """A date field is decoded under PRINTED_DATE_PATTERN: a shape outside it would be unwritable."""
    printed = style(day)
    assert re.fullmatch(PRINTED_DATE_PATTERN, printed), printed


@pytest.mark.parametrize("not_a_date", ["18:47", "1000 HRS", "394024495", "15:32:47", "09:06PM", "10 * 10.00", "05/SE200209/42193", "TEL: 03-1234"])
def test_the_date_shape_shuts_out_times_and_numbers(not_a_date):
    assert not re.fullmatch(PRINTED_DATE_PATTERN, not_a_date)


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "31/02/2018", "13/13/2018", "2018", "14 MAR", "12345678", "1 2 3 4", "14 Smarch 2018", "01/01/1800", None, 20180304, []],
)
def test_date_garbage_is_none(garbage):
    assert normalize_date(garbage) is None


def test_month_names_do_not_collide():
    """Every spelling maps to exactly one month: a second mapping would have overwritten it silently."""
    from service.normalize import _MONTH_NAMES

    spellings = [name for names in _MONTH_NAMES.values() for name in names.split()]
    assert len(spellings) == len(set(spellings)) == len(MONTHS)


def test_every_sroie_label_date_normalises():
    path = Path("/work/shared/data/sroie/normalized.jsonl")
    if not path.exists():
        pytest.skip("shared data not present")
    import json

    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    assert all(normalize_date(r["invoice_date"]) for r in rows if r.get("invoice_date"))
    assert all(re.fullmatch(PRINTED_DATE_PATTERN, r["invoice_date"]) for r in rows if r.get("invoice_date"))


# ------------------------------------------------------------------- fields


def _spec(doc: str, kind: str, **want):
    for spec in DOC_TYPES[doc].fields:
        if spec.kind == kind and all(getattr(spec, k) == v for k, v in want.items()):
            return spec
    raise LookupError(kind)


def test_field_dispatch_by_kind():
    number, date = _spec("invoice", "number"), _spec("invoice", "date")
    string, array = _spec("invoice", "string"), _spec("invoice", "array")
    assert normalize_field(number, "1.234,56 €") == 1234.56
    assert normalize_field(date, "14 MAR 2018") == "2018-03-14"
    assert normalize_field(string, "  ACME \n  GmbH ") == "ACME GmbH"
    assert normalize_field(string, "  ") is None
    assert normalize_field(number, None) is None
    item_names = [item.name for item in array.items]
    row = {name: "1,50" if item.kind == "number" else " a  b " for name, item in zip(item_names, array.items)}
    (normalised,) = normalize_field(array, [row])
    for item in array.items:
        assert normalised[item.name] == (1.5 if item.kind == "number" else "a b")
    assert normalize_field(array, "not a list") is None


def test_codes_follow_the_case_their_pattern_asks_for():
    upper = _spec("invoice", "code", format="iso4217")
    lower = _spec("ticket", "code", format="iso639-1")
    assert normalize_field(upper, " eur ") == "EUR"
    assert normalize_field(lower, "DE") == "de"


def test_enum_values_match_loosely():
    enum = next(s for s in DOC_TYPES["ticket"].fields if s.kind == "enum" and any("_" in o for o in s.enum))
    option = next(o for o in enum.enum if "_" in o)
    assert normalize_field(enum, option.upper()) == option
    assert normalize_field(enum, option.replace("_", " ").title()) == option
    assert normalize_field(enum, "something else") == "something else"


def test_an_iban_printed_in_groups_normalises_to_its_compact_form():
    spec = DOC_TYPES["invoice"].field("iban")
    assert normalize_field(spec, "de89 3704 0044 0532 0130 00") == "DE89370400440532013000"


def test_a_vat_number_normalises_to_its_compact_form_and_other_tax_numbers_stay_as_printed():
    """The labels (and VIES) write "DE942905095"; the model copies "DE 942 905 095" as the document prints it."""
    spec = DOC_TYPES["invoice"].field("vendor_tax_id")
    assert normalize_field(spec, "DE 942 905 095") == "DE942905095"
    assert normalize_field(spec, "be 0222.466.629") == "BE0222466629"
    assert normalize_field(spec, "CHE-318.639.114 MWST") == "CHE318639114"  # the suffix names the tax
    assert normalize_field(spec, "GB 452 3393 00") == "GB452339300"
    assert normalize_field(spec, "30-2931733") == "30-2931733"  # an EIN: no country prefix
    assert normalize_field(spec, "21/815/08150") == "21/815/08150"  # a Steuernummer
    assert normalize_field(spec, "ABN 51 824 753 556") == "ABN 51 824 753 556"  # AB is no VAT country


@given(st.sampled_from(["DE", "FR", "GB", "BE"]), st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=5),
       st.sampled_from([" ", ".", "-", " . "]))
def test_a_grouped_vat_number_compacts_to_the_same_value_however_it_is_grouped(country, groups, sep):
    spec = DOC_TYPES["invoice"].field("vendor_tax_id")
    assert normalize_field(spec, country + " " + sep.join(groups)) == country + "".join(groups)
