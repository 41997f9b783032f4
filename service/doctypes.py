"""Document types: one JSON Schema file each in ``config/schemas/``.

Everything that knows about fields derives from here: the prompt, the
constrained decoder (through :attr:`DocumentType.decode_schema`), validation,
the API's response model, the review form and the training format. No other
module names a field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FieldSpec:
    """One property of a document type, seen through the schema."""

    name: str
    schema: dict[str, Any]
    nullable: bool
    kind: str  # "string" | "number" | "date" | "enum" | "code" | "array"
    description: str = ""
    enum: tuple[str, ...] = ()
    format: str | None = None
    items: tuple["FieldSpec", ...] = ()

    @property
    def required(self) -> bool:
        """A field that may not be null must be settled before a document goes straight through."""
        return not self.nullable

    @property
    def advisory(self) -> bool:
        """A judgement the text cannot settle (``"x-docket-advisory": true``): reported, never holding a document back.

        A summary is written, not copied, and a priority or a sentiment is an
        opinion: their confidence says how sure the model is, but no
        threshold on it makes the document more right, and holding every
        ticket for one would send every ticket to review.
        """
        return bool(self.schema.get("x-docket-advisory"))

    @property
    def printed_words(self) -> bool:
        """Free text the document prints as it is (``"x-docket-printed": "words"``): a line item's description.

        Decoding holds it to a run of the document's words
        (:class:`service.extract.copying.PrintedRuns`): it is copied, never
        composed from two columns or made up.
        """
        return self.schema.get("x-docket-printed") == "words"

    @property
    def cue(self) -> re.Pattern[str] | None:
        """What a document prints where it has this field (``"x-docket-cues"``: regexes, any case), or None.

        A null answer is doubtful where the text prints the field's label
        ("Invoice No.", "Subtotal", an IBAN): the model's own probability of
        null is no check on it, since a null has no evidence to look for.
        """
        cues = self.schema.get("x-docket-cues")
        return re.compile("|".join(f"(?:{cue})" for cue in cues), re.IGNORECASE) if cues else None


def _types_of(schema: dict[str, Any]) -> list[str]:
    declared = schema.get("type", "string")
    return list(declared) if isinstance(declared, list) else [declared]


def _field_spec(name: str, schema: dict[str, Any]) -> FieldSpec:
    types = _types_of(schema)
    nullable = "null" in types
    base = next((t for t in types if t != "null"), "string")
    if base == "array":
        item_schema = schema.get("items", {})
        items = tuple(_field_spec(n, s) for n, s in item_schema.get("properties", {}).items())
        return FieldSpec(name, schema, nullable, "array", schema.get("description", ""), items=items)
    if "enum" in schema:
        kind = "enum"
    elif base in ("number", "integer"):
        kind = "number"
    elif schema.get("format") == "date":
        kind = "date"
    elif "pattern" in schema:
        kind = "code"
    else:
        kind = "string"
    return FieldSpec(
        name=name,
        schema=schema,
        nullable=nullable,
        kind=kind,
        description=schema.get("description", ""),
        enum=tuple(schema.get("enum", ())),
        format=schema.get("format"),
    )


# The shapes of a printed date that ``service.normalize.normalize_date`` reads:
# numeric with separators ("25/12/2018", "25-03-18", "2024.03.14"), eight
# digits, or with a month word ("14. März 2024", "March 14, 2024",
# "14-MAR-18", "2024 Mar 14", "August 3 , 2014" as a PDF's layout spaces it); optionally after a weekday or "le" and before
# a time ("22/03/2018 10:18", "6/2/2017 12:42 PM"). Constraining a date field
# to these shapes keeps the model from writing a time, a till number or
# "1000 HRS" where the date is: every value it can write is a date reading.
# Digits are [0-9]: ``\d`` is any Unicode digit to the decoder's regex engine
# (a random model wrote "tremendous. ꤉nd ꤉꤉꤉꤉" as a date).
_LETTER = "A-Za-zÀ-ÖØ-öø-ÿ"
_MONTH_WORD = rf"[{_LETTER}]{{3,10}}\.?"
_DAY = r"[0-9]{1,2}(st|nd|rd|th|er|e|\.)?"
_NUMERIC_DATE = r"[0-9]{1,4} ?[./-] ?[0-9]{1,2} ?[./-] ?[0-9]{2,4}"
_NAMED_DATE = (
    rf"{_DAY}[ /-]?{_MONTH_WORD}[ ,/-]*[0-9]{{2,4}}"
    rf"|{_MONTH_WORD} {_DAY} ?,? [0-9]{{4}}"
    rf"|[0-9]{{4}}[ /-]{_MONTH_WORD}[ /-][0-9]{{1,2}}"
)
_DATE_PREFIX = rf"([{_LETTER}]{{2,10}}\.?,? )?"
_TIME_OF_DAY = r"([ ,T]+[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?( ?[AaPp]\.?[Mm]\.?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?"
PRINTED_DATE_PATTERN = rf"^{_DATE_PREFIX}({_NUMERIC_DATE}|[0-9]{{8}}|{_NAMED_DATE}){_TIME_OF_DAY}$"
# What training writes for a date the source does not label (kept out of the loss).
DATE_PLACEHOLDER = "2000-01-01"


def _printed_iban_pattern() -> str:
    """Every IBAN as printed: a registered country, its check digits, then that country's BBAN, character
    class by class and exactly as long as the registry says, with at most one space between characters.

    From python-stdnum's copy of the SWIFT IBAN registry. It keeps the model
    from writing a BIC ("CLWSGB22") where the IBAN is, and from running on
    into the next column ("BE59 4828 4022 4876  BTW 21%"; compacted text
    separates columns with two spaces).
    """
    import stdnum  # noqa: PLC0415 - its data file, not a module

    classes = {"n": "[0-9]", "a": "[A-Z]", "c": "[A-Z0-9]"}
    branches = []
    for line in (Path(stdnum.__file__).parent / "iban.dat").read_text().splitlines():
        entry = re.match(r'^([A-Z]{2}) .*bban="([^"]+)"', line)
        if not entry:
            continue
        country, bban = entry.groups()
        runs: list[list] = []
        for count, cls in re.findall(r"(\d+)!([nac])", bban):
            if runs and runs[-1][1] == cls:
                runs[-1][0] += int(count)
            else:
                runs.append([int(count), cls])
        branches.append(country + "[0-9]{2}" + "".join(f"( ?{classes[cls]}){{{count}}}" for count, cls in runs))
    return "^(" + "|".join(branches) + ")$"


# Formats whose printed shape is known: the decoder holds the model to it (as dates to PRINTED_DATE_PATTERN).
PRINTED_PATTERNS = {"iban": _printed_iban_pattern()}


def printed_pattern(spec: "FieldSpec") -> str | None:
    """The regex a field's raw text must match while decoding, if its kind or format has one."""
    if spec.kind == "code":
        return spec.schema["pattern"]
    if spec.kind == "date":
        return PRINTED_DATE_PATTERN
    return PRINTED_PATTERNS.get(spec.format or "")


def _decode_property(spec: FieldSpec) -> dict[str, Any]:
    """What the model writes for a field: raw text as printed, or a closed set.

    Numbers and dates are decoded as the text printed in the document so that
    the model copies (fast, verifiable evidence) and normalisation stays in
    plain code; a date is held to the printed shapes normalisation reads, an
    IBAN to its country's length; enums and short codes are constrained to
    their legal values.
    """
    if spec.kind == "array":
        inner = {
            "type": "object",
            "properties": {item.name: _decode_property(item) for item in spec.items},
            "required": [item.name for item in spec.items],
            "additionalProperties": False,
        }
        out: dict[str, Any] = {"type": "array", "items": inner}
    elif spec.kind == "enum":
        out = {"type": "string", "enum": list(spec.enum)}
    elif (pattern := printed_pattern(spec)) is not None:
        out = {"type": "string", "pattern": pattern}
    else:
        out = {"type": "string"}
    if spec.nullable:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class DocumentType:
    """A document type loaded from its schema file."""

    name: str
    schema: dict[str, Any]
    fields: tuple[FieldSpec, ...] = field(default=())

    @classmethod
    def from_schema(cls, name: str, schema: dict[str, Any]) -> "DocumentType":
        props = schema.get("properties", {})
        return cls(name=name, schema=schema, fields=tuple(_field_spec(n, s) for n, s in props.items()))

    @property
    def description(self) -> str:
        return self.schema.get("description", "")

    @property
    def rules(self) -> list[dict[str, Any]]:
        """Cross-field validation rules declared in the schema (``x-docket-rules``)."""
        return list(self.schema.get("x-docket-rules", []))

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @cached_property
    def decode_schema(self) -> dict[str, Any]:
        """The JSON Schema the constrained decoder enforces, in the schema's key order."""
        return {
            "type": "object",
            "properties": {spec.name: _decode_property(spec) for spec in self.fields},
            "required": [spec.name for spec in self.fields],
            "additionalProperties": False,
        }

    @cached_property
    def decode_schema_json(self) -> str:
        return json.dumps(self.decode_schema, sort_keys=False, separators=(",", ":"))


def load_document_types(schema_dir: Path) -> dict[str, DocumentType]:
    """Read every ``*.json`` in *schema_dir*; the file name is the type's name."""
    types: dict[str, DocumentType] = {}
    for path in sorted(Path(schema_dir).glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        types[path.stem] = DocumentType.from_schema(path.stem, schema)
    return types
