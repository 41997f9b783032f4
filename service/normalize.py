"""Turn the text the model copied from a document into normalised values.

The model writes numbers and dates exactly as printed ("1.234,56 €",
"14. März 2024"); everything here is plain, deterministic code so that the
model only has to copy. Every function returns ``None`` for input it cannot
read rather than raising: a value we cannot normalise is a value we do not
have, and validation and routing deal with that.

Amounts
    The last separator (``.`` or ``,``) is the decimal point when it is
    followed by exactly one or two digits, or when both kinds of separator
    appear (then the last one is decimal, whatever follows it). A single
    separator followed by three digits is a thousands separator ("1.234" is
    1234) unless the part before it cannot be a thousands group ("0.125",
    "1234.567"). Spaces, apostrophes and thin spaces group thousands; Indian
    grouping ("1,00,000.00") is accepted. Currency symbols and codes before or
    after the number are ignored; "-45", "45-", "(45)", "−45" and "45.00 CR"
    (credit) are negative.

Dates
    Output is ISO 8601 (``YYYY-MM-DD``). Month names and abbreviations in
    English, German, French, Dutch and Malay are understood. All-numeric dates
    are read year-first when the first part has four digits, otherwise
    day-month-year (``day_first=True``, the default) — except that when the
    first part is at most 12 and the second is above 12 the date can only be
    month-day-year and is read so. With ``day_first=False`` the roles swap.
    Two-digit years 00–69 are 2000–2069, 70–99 are 1970–1999. Eight digits
    without separators are YYYYMMDD when that is a real date, otherwise
    DDMMYYYY (MMDDYYYY with ``day_first=False``). Years outside 1900–2099 are
    rejected as misreads.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import unicodedata
from decimal import Decimal
from typing import Any

from service.doctypes import FieldSpec
from service.validate import compact_tax_id, has_vat_prefix

__all__ = ["normalize_amount", "normalize_date", "normalize_field", "normalize_values"]

# ---------------------------------------------------------------- amounts

_MINUS_SIGNS = "-\u2212\u2012\u2013\u2014"
_GROUP_SPACES = " \u00a0\u202f\u2009'\u2019"
# A currency marker: a symbol or a short run of letters, optionally ending in
# a dot ("Rs.", "kr."), e.g. "€", "RM", "US$", "EUR", "zł", "CHF".
_CURRENCY = r"(?:[^\W\d_]{1,4}\.?|[$€£¥₹₩₽₺₪฿₫₱¢]|[^\W\d_]{1,3}[$€£¥])"
_NUMBER_CORE = r"\d[\d.,\s\u00a0\u202f\u2009'\u2019]*"
_AMOUNT_RE = re.compile(
    rf"""^\s*
    (?P<sign1>[{_MINUS_SIGNS}+])?\s*
    (?P<open>\()?\s*
    (?:{_CURRENCY})?\s*
    (?P<sign2>[{_MINUS_SIGNS}+])?\s*
    (?:{_CURRENCY})?\s*
    (?P<number>{_NUMBER_CORE}|[.,]\d+)
    \s*(?:{_CURRENCY})?\s*
    (?P<close>\))?\s*
    (?P<sign3>[{_MINUS_SIGNS}])?\s*
    (?:{_CURRENCY})?\s*
    (?:[Cc][Rr]\.?)?\s*$""",
    re.VERBOSE,
)
_MAX_AMOUNT_CHARS = 64  # a printed amount is short; longer text is not one (and keeps the regex linear)
_THOUSANDS_GROUPS = re.compile(r"^\d{1,3}(?:,\d{3})*$|^\d{1,2}(?:,\d{2})*,\d{3}$")


def normalize_amount(raw: Any) -> float | None:
    """Read a printed amount ("1.234,56 €", "(45.00)", "RM 9.00") as a float."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, (int, float, Decimal)):
        value = float(raw)
        return value if math.isfinite(value) else None
    if not isinstance(raw, str) or len(raw) > _MAX_AMOUNT_CHARS:
        return None
    match = _AMOUNT_RE.match(raw)
    if not match or bool(match["open"]) != bool(match["close"]):
        return None
    canonical = _canonical_number(match["number"].strip())
    if canonical is None:
        return None
    signs = [match[name] for name in ("sign1", "sign2", "sign3") if match[name]]
    negative = bool(match["open"]) or any(s in _MINUS_SIGNS for s in signs)
    if len(signs) > 1 or (negative and match["open"] and signs):
        return None
    negative = negative or _ends_with_credit_marker(raw)
    value = float(canonical)
    return -value if negative else value


def _ends_with_credit_marker(raw: str) -> bool:
    """Credit notes print "45.00 CR"; the regex may have read "CR" as a currency code."""
    return bool(re.search(r"\d\s*(?:[^\W\d_]{1,4}\.?\s+)?[Cc][Rr]\.?\s*$", raw))


def _canonical_number(text: str) -> str | None:
    """"1.234,56" → "1234.56"; None when the separators do not make sense."""
    for space in _GROUP_SPACES:
        text = text.replace(space, " ")
    if " " in text and not _spaces_group_thousands(text):
        return None
    text = text.replace(" ", "")
    if text[0] in ".,":
        text = "0" + text
    separators = [c for c in text if c in ".,"]
    if not separators:
        return text
    last = max(text.rfind("."), text.rfind(","))
    integer, fraction = text[:last], text[last + 1 :]
    if not fraction.isdigit():
        return None
    if _last_separator_is_decimal(integer, fraction, set(separators)):
        integer_digits = _strip_thousands(integer)
        return None if integer_digits is None else f"{integer_digits}.{fraction}"
    return _strip_thousands(text)


def _last_separator_is_decimal(integer: str, fraction: str, kinds: set[str]) -> bool:
    if len(fraction) in (1, 2) or len(kinds) == 2:
        return True
    if len(fraction) != 3:
        return True  # "3.14159": four or more digits can never be a thousands group
    # A single separator before exactly three digits groups thousands,
    # unless what precedes it cannot start a grouped number.
    plain_integer = integer.isdigit()
    return plain_integer and (len(integer) > 3 or integer == "0")


def _strip_thousands(text: str) -> str | None:
    """Remove one consistent thousands separator ("," or "."), checking the groups."""
    if text.isdigit():
        return text
    kinds = {c for c in text if c in ".,"}
    if len(kinds) != 1:
        return None
    grouped = text.replace(kinds.pop(), ",")
    return grouped.replace(",", "") if _THOUSANDS_GROUPS.match(grouped) else None


def _spaces_group_thousands(text: str) -> bool:
    """A space inside a number must separate groups of three ("1 234 567,89")."""
    head = re.split(r"[.,]\d{1,2}$", text)[0]
    head = re.sub(r"[.,]", " ", head)
    parts = head.split(" ")
    return 1 <= len(parts[0]) <= 3 and all(len(p) == 3 and p.isdigit() for p in parts[1:])


# ---------------------------------------------------------------- dates

_MONTH_NAMES = {
    1: "jan january januar jänner janner januari janvier janv",
    2: "feb february februar februari fevrier fev fevr febr",
    3: "mar march marz maerz mrz maart mrt mac mars",
    4: "apr april avril avr",
    5: "may mai mei",
    6: "jun june juni juin",
    7: "jul july juli julai juillet juil",
    8: "aug august augustus ogos ogo aout",
    9: "sep sept september septembre",
    10: "oct october okt oktober octobre",
    11: "nov november novembre",
    12: "dec december dez dezember decembre dis disember",
}
MONTHS: dict[str, int] = {name: month for month, names in _MONTH_NAMES.items() for name in names.split()}

# Words that may surround a date and carry no information about it.
_FILLER_WORDS = set(
    "the of on le de den der am op pada "
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun "
    "montag dienstag mittwoch donnerstag freitag samstag sonntag "
    "lundi mardi mercredi jeudi vendredi samedi dimanche "
    "maandag dinsdag woensdag donderdag vrijdag zaterdag zondag "
    "isnin selasa rabu khamis jumaat sabtu ahad".split()
)
_TIME_SUFFIX = re.compile(r"[\st,]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[ap]\.?m\.?)?\s*(?:z|[+-]\d{2}:?\d{2})?$")
_ORDINAL = re.compile(r"^(\d{1,2})(?:st|nd|rd|th|er|e|ème|eme)$")
_MIN_YEAR, _MAX_YEAR = 1900, 2099


def normalize_date(raw: Any, day_first: bool = True) -> str | None:
    """Read a printed date as ISO ``YYYY-MM-DD`` (see the module docstring for the rules)."""
    if isinstance(raw, _dt.datetime):
        raw = raw.date()
    if isinstance(raw, _dt.date):
        return raw.isoformat() if _MIN_YEAR <= raw.year <= _MAX_YEAR else None
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    tokens = _date_tokens(raw)
    if tokens is None:
        return None
    if len(tokens) == 1 and tokens[0].isdigit() and len(tokens[0]) == 8:
        return _compact_date(tokens[0], day_first)
    named = [t for t in tokens if not t.isdigit()]
    if len(tokens) != 3 or len(named) > 1:
        return None
    if named:
        return _date_with_month_name(tokens, day_first)
    return _numeric_date(tokens, day_first)


def _date_tokens(raw: str) -> list[str] | None:
    text = _fold_accents(raw).lower().strip()
    text = _TIME_SUFFIX.sub("", text)
    tokens = [t for t in re.split(r"[\s/.,\-]+", text) if t]
    cleaned = []
    for token in tokens:
        ordinal = _ORDINAL.match(token)
        if ordinal:
            token = ordinal.group(1)
        if token in _FILLER_WORDS:
            continue
        if not token.isdigit() and token not in MONTHS:
            return None
        cleaned.append(token)
    return cleaned


def _fold_accents(text: str) -> str:
    """"März" → "Marz", "décembre" → "decembre"; also reads "ä" written as "ae" via MONTHS."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _date_with_month_name(tokens: list[str], day_first: bool) -> str | None:
    month = MONTHS[next(t for t in tokens if not t.isdigit())]
    numbers = [t for t in tokens if t.isdigit()]
    # "2024 Mar 14" puts the year first; otherwise the day comes before the year
    # ("14 Mar 2024", "March 14, 2024", "14-MAR-18").
    if len(numbers[0]) == 4:
        year, day = numbers
    else:
        day, year = numbers
    return _iso(_full_year(year), month, day)


def _numeric_date(tokens: list[str], day_first: bool) -> str | None:
    first, second, third = tokens
    if len(first) == 4:
        return _iso(_full_year(first), second, third)
    if len(third) not in (2, 4):
        return None
    year = _full_year(third)
    a, b = int(first), int(second)
    if day_first:
        day, month = (b, a) if a <= 12 < b else (a, b)
    else:
        month, day = (b, a) if b <= 12 < a else (a, b)
    return _iso(year, month, day)


def _compact_date(digits: str, day_first: bool) -> str | None:
    ymd = _iso(int(digits[:4]), digits[4:6], digits[6:])
    if ymd:
        return ymd
    a, b, year = digits[:2], digits[2:4], int(digits[4:])
    return _iso(year, b, a) if day_first else _iso(year, a, b)


def _full_year(text: str) -> int | None:
    if len(text) == 2:
        yy = int(text)
        return 2000 + yy if yy < 70 else 1900 + yy
    return int(text) if len(text) == 4 else None


def _iso(year: int | None, month: int | str, day: int | str) -> str | None:
    if year is None or not _MIN_YEAR <= year <= _MAX_YEAR:
        return None
    try:
        return _dt.date(year, int(month), int(day)).isoformat()
    except (ValueError, OverflowError):
        return None


# ---------------------------------------------------------------- fields

_BLANK_WORDS = {"", "null", "none", "n/a", "na", "-", "--"}


# Identifiers printed in groups for the eye ("DE89 3704 0044 ...") whose
# canonical form has no separators.
COMPACT_FORMATS = frozenset({"iban"})


def normalize_field(spec: FieldSpec, raw: Any) -> Any:
    """Normalise one field's raw model output according to its kind in the schema."""
    if raw is None:
        return None
    if spec.kind == "array":
        return _normalize_rows(spec, raw)
    if isinstance(raw, str) and raw.strip().lower() in _BLANK_WORDS:
        return None
    if spec.kind == "number":
        return normalize_amount(raw)
    if spec.kind == "date":
        return normalize_date(raw)
    text = collapse_whitespace(str(raw))
    if spec.kind == "code":
        return _code_case(spec, text)
    if spec.kind == "enum":
        return _enum_value(spec, text)
    if spec.format in COMPACT_FORMATS:
        return re.sub(r"[\s-]", "", text).upper()
    if spec.format == "vat-id":
        return normalize_vat_id(text)
    return text


_SWISS_VAT_SUFFIX = re.compile(r"\s*\b(MWST|TVA|IVA)$", re.IGNORECASE)


def normalize_vat_id(text: str) -> str:
    """A VAT number with its country prefix in its compact form, as VIES writes it.

    "DE 942 905 095" → "DE942905095", "CHE-318.639.114 MWST" → "CHE318639114"
    (the suffix names the tax, not the number). A tax number without a
    country prefix (an EIN "30-2931733", a Steuernummer "21/815/08150")
    stays as printed: there the separators are part of how it is written.
    """
    compact = compact_tax_id(_SWISS_VAT_SUFFIX.sub("", text))
    return compact if compact.isalnum() and has_vat_prefix(compact) else text


def normalize_values(fields: tuple[FieldSpec, ...], raw: dict[str, Any]) -> dict[str, Any]:
    """Normalise a whole raw answer (``{field: raw}``) field by field."""
    return {spec.name: normalize_field(spec, raw.get(spec.name)) for spec in fields}


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def _normalize_rows(spec: FieldSpec, raw: Any) -> list[dict[str, Any]] | None:
    if not isinstance(raw, list):
        return None
    rows = [row for row in raw if isinstance(row, dict)]
    return [normalize_values(spec.items, row) for row in rows]


def _code_case(spec: FieldSpec, text: str) -> str:
    """Codes are upper-case, unless their pattern asks for lower case (ISO 639-1)."""
    code = "".join(text.split())
    pattern = spec.schema.get("pattern")
    if pattern and not re.fullmatch(pattern, code.upper()) and re.fullmatch(pattern, code.lower()):
        return code.lower()
    return code.upper()


def _enum_value(spec: FieldSpec, text: str) -> str:
    """Match an enum value ignoring case and space/hyphen/underscore differences."""
    wanted = _enum_key(text)
    for option in spec.enum:
        if _enum_key(option) == wanted:
            return option
    return text


def _enum_key(text: str) -> str:
    return re.sub(r"[\s\-_]+", "_", text.strip().casefold())
