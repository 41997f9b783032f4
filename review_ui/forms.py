"""The review form, both ways: what each field shows, and the values a person submitted.

Everything is derived from the document type's schema (:mod:`service.doctypes`);
no field is named here. Scalar fields post as ``f.<field>``; a line-item
table posts its rows in page order as ``rows.<field>`` (one stable key per
row) and its cells as ``f.<field>.<key>.<column>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from service.doctypes import DocumentType, FieldSpec
from service.normalize import collapse_whitespace, normalize_field

HIGH, MEDIUM = 0.9, 0.6  # colour bands when no threshold is known


# --- showing ----------------------------------------------------------------------


def display(value: Any) -> str:
    """A value as the form shows it: empty for null, numbers without exponent."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = format(value, "f").rstrip("0").rstrip(".") if "e" in repr(value) else repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def band(confidence: float | None, threshold: float) -> str:
    if confidence is None:
        return "none"
    if confidence >= threshold:
        return "high"
    return "medium" if confidence >= MEDIUM else "low"


@dataclass
class Cell:
    key: str  # evidence key: field.row.column
    spec: FieldSpec
    value: str
    confidence: float | None
    band: str
    attention: bool
    evidence: dict[str, Any] | None


@dataclass
class FieldView:
    spec: FieldSpec
    value: str
    confidence: float | None
    band: str
    source: str
    evidence: dict[str, Any] | None
    problems: list[str]
    rules: list[str]  # failed rules naming this field
    reasons: list[str]  # routing reasons naming this field
    candidates: list[dict[str, Any]]
    attention: bool
    rows: list[list[Cell]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.spec.name


def top_field(name: str) -> str:
    """``line_items[].amount`` → ``line_items``."""
    return re.split(r"[\[.]", name, maxsplit=1)[0]


def column_of(name: str) -> str | None:
    match = re.match(r"^[^\[.]+(?:\[\])?\.(.+)$", name)
    return match.group(1) if match else None


def field_views(doc_type: DocumentType, fields: dict[str, Any], validation: list[dict[str, Any]],
                reasons: list[dict[str, Any]], candidates: dict[str, list[dict[str, Any]]],
                threshold: float) -> list[FieldView]:
    """One view per schema field of the extraction *fields*, flagged when it needs a person."""
    rules: dict[str, list[str]] = {}
    rule_columns: dict[str, set[str]] = {}
    named: dict[str, list[str]] = {}
    declared = {rule.get("name"): rule for rule in doc_type.rules}
    for failure in validation:
        rule = declared.get(failure["name"], {})
        terms = [*rule.get("terms", []), rule.get("equals"), rule.get("field"), rule.get("other")]
        for name in [*failure.get("fields", []), *(t for t in terms if isinstance(t, str))]:
            rules.setdefault(top_field(name), []).append(failure["name"])
            if column_of(name):  # a rule over a column flags that column's cells
                rule_columns.setdefault(top_field(name), set()).add(column_of(name))
    for reason in reasons:
        for name in [reason.get("field"), *reason.get("fields", ())]:
            if name:
                named.setdefault(top_field(name), []).append(reason.get("code", "?"))
    views = []
    for spec in doc_type.fields:
        result = fields.get(spec.name) or {}
        confidence = result.get("confidence")
        problems = list(result.get("problems") or [])
        value = result.get("value")
        view = FieldView(
            spec=spec,
            value="" if spec.kind == "array" else display(value),
            confidence=confidence,
            band=band(confidence, threshold),
            source=result.get("source", "model"),
            evidence=result.get("evidence"),
            problems=problems,
            rules=sorted(set(rules.get(spec.name, []))),
            reasons=sorted(set(named.get(spec.name, []))),
            candidates=candidates.get(spec.name, []),
            attention=False,
        )
        if spec.kind == "array":
            columns = rule_columns.get(spec.name, set())
            for i, row in enumerate(result.get("items") or []):
                cells = []
                for item in spec.items:
                    cell = row.get(item.name) or {}
                    conf = cell.get("confidence")
                    cells.append(Cell(
                        key=f"{spec.name}.{i}.{item.name}", spec=item, value=display(cell.get("value")),
                        confidence=conf, band=band(conf, threshold),
                        attention=(conf is not None and conf < threshold) or bool(cell.get("problems"))
                        or item.name in columns,
                        evidence=cell.get("evidence"),
                    ))
                view.rows.append(cells)
            view.attention = any(c.attention for row in view.rows for c in row) or bool(view.reasons or view.rules)
        else:
            view.attention = bool(
                view.reasons or view.rules or problems or view.candidates
                or (confidence is not None and confidence < threshold)
                or (value is None and not spec.nullable)
            )
        views.append(view)
    return views


# --- reading back -----------------------------------------------------------------


def parse_value(spec: FieldSpec, text: str) -> tuple[Any, str | None]:
    """A typed value from what a person typed, or an error message."""
    text = text.strip()
    if not text:
        return None, None if spec.nullable else "a value is required"
    if spec.kind == "enum":
        return (text, None) if text in spec.enum else (None, f"choose one of {', '.join(spec.enum)}")
    if spec.kind == "string":
        return collapse_whitespace(text), None
    value = normalize_field(spec, text)
    if value is None:
        hint = {"number": "a number such as 1234.50", "date": "a date such as 2026-11-23"}.get(spec.kind, "a value")
        return None, f"{text!r} is not {hint}"
    if spec.kind == "code" and not re.fullmatch(spec.schema["pattern"], value):
        return None, f"{text!r} does not have the form {spec.schema['pattern']}"
    return value, None


def parse_values(doc_type: DocumentType, form: MultiDict) -> tuple[dict[str, Any], dict[str, str]]:
    """Every field's value from a submitted review form, and errors by field label."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in doc_type.fields:
        if spec.kind == "array":
            rows = []
            for number, key in enumerate(form.getlist(f"rows.{spec.name}"), start=1):
                row, texts = {}, []
                for item in spec.items:
                    text = form.get(f"f.{spec.name}.{key}.{item.name}", "")
                    texts.append(text.strip())
                    row[item.name], error = parse_value(item, text)
                    if error:
                        errors[f"{spec.name} row {number} {item.name}"] = error
                if any(texts):  # a row left entirely blank is dropped
                    rows.append(row)
                else:
                    errors = {k: v for k, v in errors.items() if not k.startswith(f"{spec.name} row {number} ")}
            values[spec.name] = rows
            continue
        name = f"f.{spec.name}"
        if name not in form:
            errors[spec.name] = "missing from the form"
            continue
        values[spec.name], error = parse_value(spec, form[name])
        if error:
            errors[spec.name] = error
    return values, errors
