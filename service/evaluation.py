"""Scoring extractions against labelled datasets (``docket eval``), engine-agnostic.

Datasets are JSON Lines in the ``normalized.jsonl`` format of ``shared/data``:
one object per document with ``id``, either ``input`` (a path relative to the
JSONL file) or inline ``text``, and labels under the document type's field
names. A label that is null, absent or blank is *unlabelled*: it is left out
of scoring, never read as "expected null". Labels are normalised like model
output (SROIE prints dates as "25/12/2018" and totals as strings); array
labels are used only when their rows use our item keys (invoice2data's line
items do not, so they are skipped).

Comparisons (:func:`score_field`): amounts within ±0.01; dates after ISO
normalisation; enums ignoring case and ``_``/space/hyphen (Bitext's
"SHIPPING_ADDRESS" is our "shipping_address"); codes ignoring case; other
strings after case and whitespace folding, and — when both sides look like an
identifier (one token containing a digit) — also without a leading ``#`` or
leading zeros.

Nothing here imports the engine: :func:`run_eval` takes any callable
``(doc_type_name, text_or_path) -> Extraction``-like.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.doctypes import DocumentType, FieldSpec, load_document_types
from service.extract.result import Extraction, FieldResult
from service.normalize import collapse_whitespace, normalize_amount, normalize_date, normalize_field
from service.routing import REVIEW, STRAIGHT_THROUGH, choose_thresholds, decide
from service.validate import RuleFailure, apply_rule_failures, validate

__all__ = [
    "DocumentRecord",
    "Example",
    "FieldOutcome",
    "FieldReport",
    "Report",
    "auroc",
    "clean_label",
    "expected_calibration_error",
    "infer_doc_type",
    "load_dataset",
    "run_eval",
    "score_document",
    "score_field",
    "summarize",
]

AMOUNT_TOLERANCE = 0.01
DEFAULT_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "config" / "schemas"

# ------------------------------------------------------------------ datasets


@dataclass
class Example:
    """One labelled document: ``source`` is inline text (str) or an absolute Path."""

    id: str
    source: str | Path
    labels: dict[str, Any]
    dataset: str = ""  # the dataset folder's name ("sroie"), for split selection


def load_dataset(path: str | Path, doc_type: DocumentType) -> list[Example]:
    """Read a ``normalized.jsonl`` file, keeping only labelled fields of *doc_type*, normalised."""
    path = Path(path)
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            examples.append(
                Example(
                    id=str(row.get("id", number)),
                    source=_source_of(row, path.parent, number),
                    labels=_labels_of(row, doc_type),
                    dataset=path.parent.name,
                )
            )
    return examples


def infer_doc_type(path: str | Path, doc_types: dict[str, DocumentType]) -> DocumentType:
    """The document type a dataset is for, when the caller does not say.

    A row's ``doc_type`` is used when it names a known type; otherwise (SROIE
    says "receipt", Bitext says nothing) the type whose field names cover the
    most labelled keys of the first rows wins.
    """
    coverage = dict.fromkeys(doc_types, 0)
    with Path(path).open(encoding="utf-8") as lines:
        for line, _ in zip(lines, range(50)):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("doc_type") in doc_types:
                return doc_types[row["doc_type"]]
            labelled = {key for key, value in row.items() if value not in (None, "")}
            for name, doc_type in doc_types.items():
                coverage[name] += len(labelled & {spec.name for spec in doc_type.fields})
    best = max(coverage, key=coverage.get, default=None)
    if best is None or coverage[best] == 0:
        raise ValueError(f"{path}: cannot tell which document type its labels belong to")
    return doc_types[best]


def _source_of(row: dict[str, Any], folder: Path, number: int) -> str | Path:
    if row.get("input"):
        return (folder / row["input"]).resolve()
    if isinstance(row.get("text"), str):
        return row["text"]
    raise ValueError(f"line {number}: neither 'input' nor 'text'")


def _labels_of(row: dict[str, Any], doc_type: DocumentType) -> dict[str, Any]:
    labels = {}
    for spec in doc_type.fields:
        value = clean_label(spec, row.get(spec.name))
        if value is not None:
            labels[spec.name] = value
    return labels


def clean_label(spec: FieldSpec, value: Any) -> Any:
    """A dataset label in our normalised form, or None when it is unlabelled or unusable."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if spec.kind == "array":
        return _our_rows(spec, value)
    if spec.kind == "enum":
        return _fold_enum(str(value))
    return normalize_field(spec, value)


def _our_rows(spec: FieldSpec, value: Any) -> list[dict[str, Any]] | None:
    """Rows normalised, only if every row is a dict using nothing but our item keys."""
    ours = {item.name for item in spec.items}
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(row, dict) and row and set(row) <= ours for row in value):
        return None
    return normalize_field(spec, value)


# ------------------------------------------------------------------ scoring


def score_field(spec: FieldSpec, predicted: Any, expected: Any) -> bool:
    """Whether *predicted* counts as the labelled *expected* value (see the module docstring)."""
    if expected is None:
        return predicted is None
    if predicted is None:
        return False
    if spec.kind == "number":
        got, want = normalize_amount(predicted), normalize_amount(expected)
        return got is not None and want is not None and abs(got - want) <= AMOUNT_TOLERANCE + 1e-9
    if spec.kind == "date":
        got = normalize_date(predicted)
        return got is not None and got == normalize_date(expected)
    if spec.kind == "enum":
        return _fold_enum(str(predicted)) == _fold_enum(str(expected))
    if spec.kind == "code":
        return _fold_text(str(predicted)).replace(" ", "") == _fold_text(str(expected)).replace(" ", "")
    if spec.kind == "array":
        return _rows_match(spec, predicted, expected)
    return _strings_match(str(predicted), str(expected))


def _fold_text(text: str) -> str:
    return collapse_whitespace(text).casefold()


def _fold_enum(text: str) -> str:
    return re.sub(r"[\s\-_]+", "_", text.strip().casefold())


_ID_MARK = re.compile(r"^#\s*")


def _looks_like_id(text: str) -> bool:
    return " " not in text and any(c.isdigit() for c in text)


def _fold_id(text: str) -> str:
    return text.lstrip("#").lstrip("0")


def _strings_match(predicted: str, expected: str) -> bool:
    got, want = _fold_text(predicted), _fold_text(expected)
    if got == want:
        return True
    got, want = _ID_MARK.sub("", got), _ID_MARK.sub("", want)  # "# 123" and "#123" are "123"
    return _looks_like_id(got) and _looks_like_id(want) and _fold_id(got) == _fold_id(want)


def _rows_match(spec: FieldSpec, predicted: Any, expected: Any) -> bool:
    if not (isinstance(predicted, list) and isinstance(expected, list)) or len(predicted) != len(expected):
        return False
    for got_row, want_row in zip(predicted, expected):
        if not isinstance(got_row, dict):
            return False
        for item in spec.items:
            want = want_row.get(item.name)
            if want is not None and not score_field(item, got_row.get(item.name), want):
                return False
    return True


# ------------------------------------------------------------------ records


@dataclass
class FieldOutcome:
    """One labelled field of one document."""

    field: str
    expected: Any
    predicted: Any
    confidence: float
    correct: bool


@dataclass
class DocumentRecord:
    """A scored document: what was extracted, what the labels say, which rules failed."""

    id: str
    doc_type: DocumentType
    extraction: Extraction
    outcomes: list[FieldOutcome]
    failures: list[RuleFailure] = field(default_factory=list)
    error: str | None = None
    route: str | None = None  # set by summarize(), under the thresholds it used


def score_document(
    doc_type: DocumentType, example: Example, extraction: Any, apply_rules: bool = True
) -> DocumentRecord:
    """Validate one extraction (lowering confidences on failed rules) and score its labelled fields.

    Set *apply_rules* to False when the extractor already applied
    :func:`service.validate.apply_rule_failures`.
    """
    extraction = as_extraction(extraction, doc_type.name)
    failures = validate(doc_type, extraction.values())
    if apply_rules:
        apply_rule_failures(extraction, failures)
    outcomes = []
    for spec in doc_type.fields:
        if spec.name not in example.labels:
            continue
        result = extraction.fields.get(spec.name) or FieldResult(None, confidence=0.0)
        expected = example.labels[spec.name]
        outcomes.append(
            FieldOutcome(spec.name, expected, result.value, float(result.confidence), score_field(spec, result.value, expected))
        )
    return DocumentRecord(example.id, doc_type, extraction, outcomes, failures)


def score_answer(doc_type: DocumentType, example: Example, answer: Callable[[], Any], apply_rules: bool = True) -> DocumentRecord:
    """Score what *answer()* returns; if it raises, the document counts as an answer of nulls (:func:`failed_document`)."""
    try:
        extraction = answer()
    except Exception as exc:  # noqa: BLE001 - one bad document must not end an evaluation
        return failed_document(doc_type, example, f"{type(exc).__name__}: {exc}")
    return score_document(doc_type, example, extraction, apply_rules)


def failed_document(doc_type: DocumentType, example: Example, error: str) -> DocumentRecord:
    """An extractor that raised answered nothing: every label counts as a null answer."""
    empty = Extraction(doc_type.name, {}, "", warnings=[f"error: {error}"])
    record = score_document(doc_type, example, empty, apply_rules=False)
    record.error = error
    return record


def as_extraction(obj: Any, doc_type_name: str) -> Extraction:
    """An :class:`Extraction` from an Extraction, its ``to_dict()`` form, or any object with ``.fields``.

    Always a copy, so that applying rule failures never changes the caller's object.
    """
    if isinstance(obj, Extraction):
        return copy.deepcopy(obj)
    if isinstance(obj, dict) and isinstance(obj.get("fields"), dict):
        fields = {name: _field_result(f) for name, f in obj["fields"].items()}
        return Extraction(obj.get("doc_type", doc_type_name), fields, str(obj.get("model_version", "")),
                          warnings=list(obj.get("warnings", [])))
    if hasattr(obj, "fields"):
        fields = {name: _field_result(f) for name, f in dict(obj.fields).items()}
        return Extraction(getattr(obj, "doc_type", doc_type_name), fields, str(getattr(obj, "model_version", "")),
                          warnings=list(getattr(obj, "warnings", []) or []))
    raise TypeError(f"cannot read an extraction from {type(obj).__name__}")


def _field_result(f: Any) -> FieldResult:
    get = f.get if isinstance(f, dict) else (lambda key, default=None: getattr(f, key, default))
    confidence = get("confidence", 0.0)
    return FieldResult(
        value=get("value"),
        raw=get("raw"),
        confidence=float(confidence if confidence is not None else 0.0),
        problems=list(get("problems", []) or []),
    )


# ------------------------------------------------------------------ metrics


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """Area under the ROC curve of *scores* separating positives (ties count half); None if one class is empty."""
    x = np.asarray(scores, dtype=float)
    y = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based, ties share the mean rank
    ranks = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float | None:
    """ECE over *bins* equal-width confidence bins: Σ (n_b / N) · |accuracy_b − mean confidence_b|."""
    conf = np.clip(np.asarray(confidences, dtype=float), 0.0, 1.0)
    ok = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return None
    index = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(index):
        members = index == b
        total += members.mean() * abs(ok[members].mean() - conf[members].mean())
    return float(total)


# ------------------------------------------------------------------ report


@dataclass
class FieldReport:
    field: str
    labelled: int
    correct: int
    accuracy: float | None
    null_rate: float | None
    auroc: float | None
    ece: float | None
    threshold: float | None


@dataclass
class Report:
    doc_type: str
    documents: int
    errors: int
    fields: dict[str, FieldReport]
    overall: FieldReport
    target_precision: float
    thresholds: dict[str, float]
    thresholds_in_sample: bool
    straight_through: float | None  # share of documents
    straight_through_precision: float | None  # share of their labelled fields that are correct
    records: list[DocumentRecord] = field(default_factory=list, repr=False)

    def to_dict(self, include_documents: bool = False) -> dict[str, Any]:
        """JSON-ready; with *include_documents*, every document's outcomes for error analysis."""
        out = {
            "doc_type": self.doc_type,
            "documents": self.documents,
            "errors": self.errors,
            "target_precision": self.target_precision,
            "thresholds_in_sample": self.thresholds_in_sample,
            "thresholds": {name: _json_number(v) for name, v in self.thresholds.items()},
            "straight_through": self.straight_through,
            "straight_through_precision": self.straight_through_precision,
            "fields": {name: _field_dict(f) for name, f in self.fields.items()},
            "overall": _field_dict(self.overall),
        }
        if include_documents:
            out["per_document"] = [_document_dict(r) for r in self.records]
        return out

    def to_text(self) -> str:
        header = f"{'field':<20} {'n':>6} {'acc':>7} {'null':>7} {'auroc':>7} {'ece':>7} {'thresh':>7}"
        lines = [f"{self.doc_type}: {self.documents} documents, {self.errors} errors", header, "-" * len(header)]
        for row in [*self.fields.values(), self.overall]:
            lines.append(
                f"{row.field:<20} {row.labelled:>6} {_pct(row.accuracy):>7} {_pct(row.null_rate):>7}"
                f" {_num(row.auroc):>7} {_num(row.ece):>7} {_num(row.threshold):>7}"
            )
        where = "chosen on this set" if self.thresholds_in_sample else "given"
        lines.append(
            f"straight through at {self.target_precision:.0%} field precision (thresholds {where}): "
            f"{_pct(self.straight_through)} of documents, {_pct(self.straight_through_precision)} of their labelled fields correct"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _document_dict(record: DocumentRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "route": record.route,
        "error": record.error,
        "failures": [f.to_dict() for f in record.failures],
        "fields": [asdict(o) for o in record.outcomes],
    }


def _field_dict(report: FieldReport) -> dict[str, Any]:
    return {k: _json_number(v) for k, v in asdict(report).items()}


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "—" if value is None else ("never" if value > 1 else f"{value:.3f}")


def summarize(
    records: Sequence[DocumentRecord],
    thresholds: dict[str, float] | None = None,
    target_precision: float = 0.99,
    default_threshold: float = 0.9,
    bins: int = 10,
) -> Report:
    """Per-field and overall accuracy, null rate, AUROC, ECE, and the straight-through share.

    Without *thresholds* (normally chosen on a validation split), thresholds
    are chosen on these records to reach *target_precision* per field, and
    fields without any label here are not gated (their precision cannot be
    measured); the report says which it did.
    """
    by_field: dict[str, list[FieldOutcome]] = {}
    for record in records:
        for outcome in record.outcomes:
            by_field.setdefault(outcome.field, []).append(outcome)
    in_sample = thresholds is None
    if in_sample:
        thresholds = {
            name: choose_thresholds([o.confidence for o in outs], [o.correct for o in outs], target_precision)
            for name, outs in by_field.items()
        }
        default_threshold = 0.0
    order = [s.name for s in records[0].doc_type.fields] if records else []
    fields = {name: _field_report(name, by_field[name], thresholds.get(name), bins) for name in order if name in by_field}
    everything = [o for outs in by_field.values() for o in outs]
    share, precision = _straight_through(records, thresholds, default_threshold)
    return Report(
        doc_type=records[0].doc_type.name if records else "",
        documents=len(records),
        errors=sum(1 for r in records if r.error),
        fields=fields,
        overall=_field_report("(all fields)", everything, None, bins),
        target_precision=target_precision,
        thresholds=dict(thresholds),
        thresholds_in_sample=in_sample,
        straight_through=share,
        straight_through_precision=precision,
        records=list(records),
    )


def _field_report(name: str, outcomes: list[FieldOutcome], threshold: float | None, bins: int) -> FieldReport:
    confidences = [o.confidence for o in outcomes]
    correct = [o.correct for o in outcomes]
    n = len(outcomes)
    return FieldReport(
        field=name,
        labelled=n,
        correct=sum(correct),
        accuracy=sum(correct) / n if n else None,
        null_rate=sum(o.predicted is None for o in outcomes) / n if n else None,
        auroc=auroc(confidences, correct),
        ece=expected_calibration_error(confidences, correct, bins),
        threshold=threshold,
    )


def _straight_through(records: Sequence[DocumentRecord], thresholds: dict[str, float], default: float):
    for record in records:
        decision = decide(record.doc_type, record.extraction, record.failures, thresholds, default)
        record.route = REVIEW if record.error else decision.route
    through = [r for r in records if r.route == STRAIGHT_THROUGH]
    if not records:
        return None, None
    outcomes = [o for r in through for o in r.outcomes]
    precision = sum(o.correct for o in outcomes) / len(outcomes) if outcomes else None
    return len(through) / len(records), precision


# ------------------------------------------------------------------ running


def select_examples(
    dataset_path: str | Path,
    doc_type: DocumentType | str | None = None,
    limit: int | None = None,
    include: Callable[[Example], bool] | None = None,
) -> tuple[DocumentType, list[Example]]:
    """The document type and the examples :func:`run_eval` scores: *include* picks, then *limit* cuts."""
    if doc_type is None:
        doc_type = infer_doc_type(dataset_path, load_document_types(DEFAULT_SCHEMA_DIR))
    elif isinstance(doc_type, str):
        doc_type = load_document_types(DEFAULT_SCHEMA_DIR)[doc_type]
    return doc_type, [e for e in load_dataset(dataset_path, doc_type) if include is None or include(e)][:limit]


def run_eval(
    extract_fn: Callable[[str, str | Path], Any],
    dataset_path: str | Path,
    doc_type: DocumentType | str | None = None,
    thresholds: dict[str, float] | None = None,
    target_precision: float = 0.99,
    limit: int | None = None,
    include: Callable[[Example], bool] | None = None,
    apply_rules: bool = True,
    on_document: Callable[[DocumentRecord], None] | None = None,
) -> Report:
    """Extract every document of a dataset with *extract_fn* and summarise the scores.

    *include* selects documents (for example the evaluation split:
    ``lambda e: split_of(e.dataset, e.id) == "eval"``) before *limit* applies.
    An extractor error is recorded on the document (all its labels count as
    null answers) instead of stopping the run.
    """
    doc_type, examples = select_examples(dataset_path, doc_type, limit, include)
    records = []
    for example in examples:
        record = score_answer(doc_type, example, lambda: extract_fn(doc_type.name, example.source), apply_rules)
        records.append(record)
        if on_document:
            on_document(record)
    return summarize(records, thresholds, target_precision)
