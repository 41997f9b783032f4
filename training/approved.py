"""Approved documents as training examples: the values a person accepted, written as the document prints them.

Approved values are normalised (ISO dates, numbers); the model writes what the
document prints. :func:`approved_target` finds, for each approved value, the
text in the document that reads as it — the machine answer the reviewer saw
when it was right and is printed there, otherwise the shortest run of words
that normalises to it — and leaves a number or date it cannot find out of the
loss rather than teaching a string the document lacks. A value the decoder
could not write (an IBAN of the wrong length) is left out of the loss too,
rather than the whole document. Golden examples (held
back by a stable hash when approved) are returned apart and never trained on.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.doctypes import DocumentType, FieldSpec, printed_pattern
from service.evaluation import score_field
from service.extract.prompt import clean_value
from service.models import ExtractionAttempt, TrainingExample
from service.normalize import normalize_field
from training.dataset import TrainExample

_WORD = re.compile(r"\S+")


def _candidates(text: str, max_words: int = 9) -> list[str]:
    """Every run of 1..max_words words within a line: shortest first, then in document order.

    Nine words: the longest IBAN (34 characters) printed in groups of four.
    """
    lines = [_WORD.findall(line) for line in text.split("\n")]
    return [" ".join(words[i:i + n]) for n in range(1, max_words + 1)
            for words in lines for i in range(len(words) - n + 1)]


def _raw_rows(shown: dict[str, Any]) -> list[dict[str, Any]]:
    """An array field's raw rows: the engine's raw list, or each cell's raw."""
    if isinstance(shown.get("raw"), list):
        return [r if isinstance(r, dict) else {} for r in shown["raw"]]
    return [{k: (cell or {}).get("raw") for k, cell in row.items()} for row in shown.get("items") or []]


def _printed(spec: FieldSpec, value: Any, shown_raw: Any, candidates: list[str], flat_text: str) -> tuple[Any, bool]:
    """The printed text for an approved *value*, and whether it was found (False: leave it out of the loss).

    The raw answer shown to the reviewer counts only if the document prints it
    (a person's edit is stored normalised, which the document may not print).
    """
    if value is None:
        return None, True
    if spec.kind in ("enum", "code"):
        return value, True
    pattern = printed_pattern(spec)
    writable = lambda raw: pattern is None or re.fullmatch(pattern, clean_value(raw)) is not None  # noqa: E731
    shown = [shown_raw] if isinstance(shown_raw, str) and " ".join(shown_raw.split()) in flat_text else []
    for raw in shown + candidates:
        if writable(raw) and _prints(spec, raw, value):
            return raw, True
    if spec.kind == "string" and writable(str(value)):
        return str(value), True
    return None, False


def _prints(spec: FieldSpec, raw: str, value: Any) -> bool:
    """Whether printed *raw* reads as *value*; strings also ignoring spaces (an IBAN printed in groups)."""
    if score_field(spec, normalize_field(spec, raw), value):
        return True
    squeeze = lambda t: "".join(str(t).split()).casefold()
    return spec.kind == "string" and squeeze(raw) == squeeze(value)


def approved_target(doc_type: DocumentType, text: str, values: dict[str, Any],
                    shown: dict[str, Any] | None = None) -> tuple[dict[str, Any], set[str]]:
    """The training target (raw text as printed) and the labelled fields for an approved document.

    *shown* is the fields of the answer the reviewer saw (``{name: {"raw": ...}}``):
    a value the model had right keeps the exact text it wrote.
    """
    shown = shown or {}
    candidates = _candidates(text)
    flat_text = " ".join(text.split())
    target: dict[str, Any] = {}
    labelled: set[str] = set()
    for spec in doc_type.fields:
        value = values.get(spec.name)
        raw = (shown.get(spec.name) or {}).get("raw")
        if spec.kind == "array":
            rows, ok = [], True
            raw_rows = _raw_rows(shown.get(spec.name) or {})
            for i, row in enumerate(value or []):
                raw_row = raw_rows[i] if i < len(raw_rows) else {}
                out_row = {}
                for item in spec.items:
                    printed, found = _printed(item, row.get(item.name), raw_row.get(item.name), candidates, flat_text)
                    out_row[item.name] = printed
                    ok &= found
                rows.append(out_row)
            target[spec.name] = rows
            if ok:
                labelled.add(spec.name)
            continue
        printed, found = _printed(spec, value, raw, candidates, flat_text)
        target[spec.name] = printed
        if found:
            labelled.add(spec.name)
    return target, labelled


def load_approved(session: Session, doc_types: dict[str, DocumentType]) -> tuple[list[TrainExample], list[TrainingExample]]:
    """Training examples from approved, non-golden documents; and the golden rows, held back."""
    rows = list(session.scalars(select(TrainingExample).order_by(TrainingExample.id)))
    train_rows = [r for r in rows if not r.golden and r.doc_type in doc_types]
    golden = [r for r in rows if r.golden and r.doc_type in doc_types]
    shown = shown_answers(session, [r.document_id for r in train_rows if r.document_id])
    examples = []
    for r in train_rows:
        target, labelled = approved_target(doc_types[r.doc_type], r.text, r.values, shown.get(r.document_id))
        examples.append(TrainExample(f"approved-{r.id}", r.doc_type, r.text, target, labelled))
    return examples, golden


def shown_answers(session: Session, document_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per document, the fields of the last machine answer (model or frontier merge) a reviewer saw."""
    out: dict[str, dict[str, Any]] = {}
    attempts = session.scalars(select(ExtractionAttempt).where(
        ExtractionAttempt.document_id.in_(document_ids), ExtractionAttempt.engine != "human").order_by(ExtractionAttempt.id))
    for attempt in attempts:
        out[attempt.document_id] = attempt.fields  # later attempts win
    return out
