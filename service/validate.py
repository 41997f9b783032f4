"""Validation after decoding: field formats and the schema's cross-field rules.

Everything is driven by the document type's schema: a field's ``format``
keyword selects a format check, and ``x-docket-rules`` lists the cross-field
rules. Nothing here names a field.

Rules compare normalised values (see :mod:`service.normalize`). A rule whose
inputs include a null is skipped: a missing value is not evidence that the
document is inconsistent, and routing deals with missing required fields.

Sum rules and a null target
    When the target of a sum rule is null (a receipt that prints no subtotal)
    and another sum rule has that target among its terms with every other
    input known (``subtotal + tax = total`` with tax and total printed), the
    target is derived from that rule (``total - tax``). Line amounts may then
    match either the derived value (net lines) or the other rule's target
    (gross lines, as receipts print them); if neither matches, the rule fails
    and names every field involved. With nothing to derive from, it is skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pycountry
from email_validator import EmailNotValidError, validate_email
from stdnum import get_cc_module
from stdnum import iban as stdnum_iban
from stdnum.ch import uid as ch_uid
from stdnum.eu import vat as eu_vat

from service.doctypes import DocumentType, FieldSpec

__all__ = ["DEFAULT_TOLERANCE", "FORMAT_CHECKS", "RuleFailure", "apply_rule_failures", "validate"]

DEFAULT_TOLERANCE = 0.02  # currency units; printed amounts are rounded to cents


@dataclass(frozen=True)
class RuleFailure:
    """One failed check: ``name`` is stable and machine-readable, ``fields`` are top-level field names."""

    name: str
    fields: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fields": list(self.fields), "message": self.message}


def validate(doc_type: DocumentType, values: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE) -> list[RuleFailure]:
    """Every format and cross-field failure of one document's normalised values."""
    failures = list(_field_failures(doc_type.fields, values))
    for rule in doc_type.rules:
        failure = _check_rule(rule, doc_type, values, tolerance)
        if failure:
            failures.append(failure)
    return failures


# ------------------------------------------------------------ field formats


def is_real_date(value: Any) -> bool:
    """An ISO ``YYYY-MM-DD`` string naming a day that exists."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_currency_code(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 3 and pycountry.currencies.get(alpha_3=value) is not None


def is_language_code(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 2 and pycountry.languages.get(alpha_2=value) is not None


def is_iban(value: Any, check_country: bool = True) -> bool:
    """An IBAN with valid ISO 7064 check digits and, unless *check_country* is off, a valid national check."""
    return isinstance(value, str) and stdnum_iban.is_valid(value, check_country=check_country)


def is_email(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


_EU_PREFIXES = {cc.upper() for cc in eu_vat.MEMBER_STATES} | {"EL"}


def is_vat_id(value: Any) -> bool:
    """A tax id of a plausible shape; checksum-checked where the id names its country.

    EU numbers with their country prefix ("DE136695976", "NL004495445B01") and
    other prefixed numbers python-stdnum knows ("GB…", "CHE-…", "NO…") are
    checked with their checksum. Ids without a country prefix (GSTIN, ABN,
    EIN, Steuernummer, SST) cannot be attributed to a scheme, so they only
    need the shape of a registration number: 6–20 letters and digits with at
    least five digits, in groups separated by spaces, dots, dashes or slashes.
    """
    if not isinstance(value, str):
        return False
    compact = compact_tax_id(value)
    prefix = compact[:2]
    if prefix in _EU_PREFIXES:
        return eu_vat.is_valid(compact)
    if prefix.isalpha():
        module = _vat_module(prefix)
        if module is not None:
            # A Swiss UID is often printed without its MWST/TVA/IVA suffix,
            # which python-stdnum's VAT check requires; the number is the same.
            return bool(module.is_valid(value)) or (prefix == "CH" and ch_uid.is_valid(value))
    return _looks_like_tax_number(value, compact)


def compact_tax_id(value: str) -> str:
    """A tax id without the spaces, dots, dashes and slashes it is printed with, upper-cased."""
    return re.sub(r"[\s.\-/]", "", value).upper()


def has_vat_prefix(compact: str) -> bool:
    """Whether a compacted tax id starts with a country code that names a VAT scheme ("DE…", "CHE…", "GB…")."""
    prefix = compact[:2].upper()
    return prefix in _EU_PREFIXES or (prefix.isalpha() and _vat_module(prefix) is not None)


def _vat_module(country: str):
    """python-stdnum's VAT module for a two-letter country code, or None when it has none."""
    return get_cc_module(country.lower(), "vat")


def _looks_like_tax_number(value: str, compact: str) -> bool:
    grouped = re.fullmatch(r"[A-Za-z0-9]+(?:[\s.\-/][A-Za-z0-9]+)*", value.strip())
    return bool(grouped) and compact.isalnum() and 6 <= len(compact) <= 20 and sum(c.isdigit() for c in compact) >= 5


FORMAT_CHECKS: dict[str, Callable[[Any], bool]] = {
    "date": is_real_date,
    "iso4217": is_currency_code,
    "iso639-1": is_language_code,
    "iban": is_iban,
    "email": is_email,
    "vat-id": is_vat_id,
}


def _field_failures(specs: Iterable[FieldSpec], values: dict[str, Any], top: str | None = None) -> Iterable[RuleFailure]:
    for spec in specs:
        value = values.get(spec.name)
        if value is None:
            continue
        owner = top or spec.name
        where = spec.name if top is None else f"{top}[].{spec.name}"
        if spec.kind == "array":
            for row in value if isinstance(value, list) else []:
                if isinstance(row, dict):
                    yield from _field_failures(spec.items, row, top=owner)
            continue
        failure = _format_failure(spec, value, owner, where) or _shape_failure(spec, value, owner, where)
        if failure:
            yield failure


def _format_failure(spec: FieldSpec, value: Any, owner: str, where: str) -> RuleFailure | None:
    # Dates are checked by kind too: a date field always has format "date".
    fmt = spec.format or ("date" if spec.kind == "date" else None)
    check = FORMAT_CHECKS.get(fmt) if fmt else None
    if check is None or check(value):
        return None
    return RuleFailure(f"format_{fmt}", (owner,), f"{where}: {value!r} is not a valid {fmt}")


def _shape_failure(spec: FieldSpec, value: Any, owner: str, where: str) -> RuleFailure | None:
    if spec.kind == "enum" and value not in spec.enum:
        return RuleFailure("enum", (owner,), f"{where}: {value!r} is not one of {', '.join(spec.enum)}")
    if spec.kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return RuleFailure("number", (owner,), f"{where}: {value!r} is not a number")
    pattern = spec.schema.get("pattern")
    if pattern and not spec.format and not (isinstance(value, str) and re.search(pattern, value)):
        return RuleFailure("pattern", (owner,), f"{where}: {value!r} does not match {pattern}")
    return None


# --------------------------------------------------------- cross-field rules


def _check_rule(rule: dict[str, Any], doc_type: DocumentType, values: dict[str, Any], tolerance: float) -> RuleFailure | None:
    kind = rule.get("kind")
    if kind == "sum":
        return _check_sum(rule, doc_type.rules, values, tolerance)
    if kind == "not_before":
        return _check_not_before(rule, values)
    raise ValueError(f"unknown rule kind {kind!r} in rule {rule.get('name')!r} of {doc_type.name}")


def field_of(path: str) -> str:
    """``"line_items[].amount"`` → ``"line_items"``: the top-level field a rule path belongs to."""
    return path.split("[", 1)[0].split(".", 1)[0]


def resolve(path: str, values: dict[str, Any]) -> float | None:
    """A rule input: a plain field, or ``array[].key`` for the sum over rows (null if any row is)."""
    if "[]." not in path:
        value = values.get(path)
        return float(value) if _is_number(value) else None
    array, key = path.split("[].", 1)
    rows = values.get(array)
    if not isinstance(rows, list) or not rows:
        return None
    amounts = [row.get(key) if isinstance(row, dict) else None for row in rows]
    return sum(float(a) for a in amounts) if all(_is_number(a) for a in amounts) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_sum(rule: dict[str, Any], rules: list[dict[str, Any]], values: dict[str, Any], tolerance: float) -> RuleFailure | None:
    terms = [resolve(term, values) for term in rule["terms"]]
    if any(term is None for term in terms):
        return None
    total = sum(terms)
    involved = [field_of(p) for p in (*rule["terms"], rule["equals"])]
    target = resolve(rule["equals"], values)
    if target is not None:
        accepted = [target]
    else:
        derived = _derive_missing_target(rule["equals"], rules, values)
        if derived is None:
            return None
        accepted, other_rule = derived
        involved += [field_of(p) for p in (*other_rule["terms"], other_rule["equals"])]
    if any(abs(total - want) <= tolerance + 1e-9 for want in accepted):
        return None
    wanted = " or ".join(f"{w:.2f}" for w in accepted)
    return RuleFailure(
        rule["name"],
        tuple(dict.fromkeys(involved)),
        f"{' + '.join(rule['terms'])} = {total:.2f}, expected {rule['equals']} = {wanted} (±{tolerance})",
    )


def _derive_missing_target(missing: str, rules: list[dict[str, Any]], values: dict[str, Any]):
    """Values a null sum target can be inferred to have from another sum rule (see module docstring)."""
    for other in rules:
        if other.get("kind") != "sum" or missing not in other["terms"]:
            continue
        outer = resolve(other["equals"], values)
        rest = [resolve(t, values) for t in other["terms"] if t != missing]
        if outer is None or any(r is None for r in rest):
            continue
        return [outer - sum(rest), outer], other
    return None


def _check_not_before(rule: dict[str, Any], values: dict[str, Any]) -> RuleFailure | None:
    later, earlier = values.get(rule["field"]), values.get(rule["other"])
    if not (is_real_date(later) and is_real_date(earlier)):
        return None  # nulls are skipped; malformed dates are reported by the format check
    if later >= earlier:  # ISO dates compare as strings
        return None
    return RuleFailure(
        rule["name"], (rule["field"], rule["other"]), f"{rule['field']} {later} is before {rule['other']} {earlier}"
    )


# ------------------------------------------------------------- consequences


def apply_rule_failures(extraction, failures: Iterable[RuleFailure], penalty: float = 0.5):
    """Lower the confidence of every field a failure involves and name the failures on it.

    Each involved field is penalised once however many rules it fails (two
    failures are not twice the doubt about one value); rows of an array field
    are penalised with it. Mutates and returns *extraction*.
    """
    penalised: set[str] = set()
    for failure in failures:
        for name in failure.fields:
            result = extraction.fields.get(name)
            if result is None:
                continue
            if failure.name not in result.problems:
                result.problems.append(failure.name)
            if name not in penalised:
                penalised.add(name)
                _scale_confidence(result, penalty)
    return extraction


def _scale_confidence(result, factor: float) -> None:
    result.confidence = float(result.confidence) * factor
    for row in result.items or []:
        for cell in row.values():
            cell.confidence = float(cell.confidence) * factor
