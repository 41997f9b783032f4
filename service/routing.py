"""The routing decision: straight through, or not — as a pure function.

A document goes straight through only when every field that has to be
settled clears its confidence threshold and no validation rule failed:
non-nullable fields always count, nullable fields count when the model gave
a value (a confident null needs no threshold: nothing is written from it),
and advisory fields (a summary, a priority: judgements the text cannot
settle, marked ``x-docket-advisory`` in the schema) need a value but no
threshold.
Anything else is uncertain and, for now, goes to ``review``.

The frontier seam: :func:`decide` only says *why* a document is uncertain.
A later step that can ask a frontier model takes a ``review`` decision, looks
at :attr:`Decision.uncertain_fields` and :attr:`Decision.escalatable`, and
turns it into an escalation; nothing in here needs to change for that.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.doctypes import DocumentType

__all__ = [
    "REJECT_ALL",
    "REVIEW",
    "STRAIGHT_THROUGH",
    "Decision",
    "choose_field_thresholds",
    "choose_thresholds",
    "decide",
    "thresholds_for",
]

STRAIGHT_THROUGH = "straight_through"
REVIEW = "review"

# A threshold above any calibrated confidence: nothing clears it.
REJECT_ALL = float(np.nextafter(1.0, 2.0))

# Warnings from the engine that mean part of the document was not read.
TRUNCATION_MARKERS = ("truncat", "left out", "context budget", "token cap", "cut off")

# Reasons a second model could settle, as opposed to ones only a person can
# (a document with no text layer is as unreadable for a frontier model).
ESCALATABLE_CODES = frozenset({"low_confidence", "missing_required", "failed_rule"})


@dataclass(frozen=True)
class Decision:
    route: str
    reasons: tuple[dict[str, Any], ...] = field(default=())
    escalated: bool = False  # a frontier model was asked (see service.escalation)

    @property
    def uncertain_fields(self) -> list[str]:
        """Fields named by any reason, in order: what a second opinion should re-extract."""
        names: list[str] = []
        for reason in self.reasons:
            for name in [reason.get("field"), *reason.get("fields", ())]:
                if name and name not in names:
                    names.append(name)
        return names

    @property
    def escalatable(self) -> bool:
        """True when every reason is one a frontier model could resolve."""
        return bool(self.reasons) and all(r["code"] in ESCALATABLE_CODES for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"route": self.route, "reasons": [dict(r) for r in self.reasons], "escalated": self.escalated}


def decide(
    doc_type: DocumentType,
    extraction,
    failures: Iterable = (),
    thresholds: dict[str, float] | None = None,
    default_threshold: float = 0.9,
    has_text_layer: bool = True,
) -> Decision:
    """Straight through when nothing is uncertain; otherwise review, with every reason."""
    reasons: list[dict[str, Any]] = []
    if not has_text_layer:
        reasons.append({"code": "no_text_layer"})
    reasons += _truncation_reasons(getattr(extraction, "warnings", ()) or ())
    reasons += _field_reasons(doc_type, extraction.fields, thresholds or {}, default_threshold)
    reasons += [
        {"code": "failed_rule", "rule": f.name, "fields": list(f.fields), "message": f.message} for f in failures
    ]
    return Decision(REVIEW if reasons else STRAIGHT_THROUGH, tuple(reasons))


def _truncation_reasons(warnings: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {"code": "truncated", "warning": w} for w in warnings if any(m in str(w).lower() for m in TRUNCATION_MARKERS)
    ]


def _field_reasons(doc_type: DocumentType, fields: dict, thresholds: dict[str, float], default: float):
    for spec in doc_type.fields:
        result = fields.get(spec.name)
        has_value = result is not None and result.value is not None
        if not has_value and not spec.nullable:
            yield {"code": "missing_required", "field": spec.name}
            continue
        if not has_value or spec.advisory:
            continue
        threshold = float(thresholds.get(spec.name, default))
        confidence = float(result.confidence)
        if not confidence >= threshold:  # NaN never clears
            yield {"code": "low_confidence", "field": spec.name, "confidence": round(confidence, 4), "threshold": threshold}


def thresholds_for(meta: dict[str, Any] | None, doc_type: str) -> dict[str, float]:
    """The per-field thresholds a model's metadata stores for *doc_type*.

    Accepts ``{"thresholds": {field: t}}`` and the per-type form
    ``{"thresholds": {doc_type: {field: t}}}``; anything else means none.
    """
    stored = (meta or {}).get("thresholds") or {}
    if isinstance(stored.get(doc_type), dict):
        stored = stored[doc_type]
    return {name: float(t) for name, t in stored.items() if isinstance(t, (int, float)) and not isinstance(t, bool)}


# ------------------------------------------------------------ threshold choice


def choose_thresholds(confidences: Sequence[float], correct: Sequence[bool], target_precision: float = 0.99) -> float:
    """The lowest threshold whose accepted set (confidence >= threshold) reaches the target precision.

    Measured on a validation set of one field's answers. Returns
    :data:`REJECT_ALL` when no threshold reaches the target (or there is no
    data): such a field never goes straight through.
    """
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    if conf.shape != ok.shape:
        raise ValueError("confidences and correct differ in length")
    keep = np.isfinite(conf)
    conf, ok = conf[keep], ok[keep]
    if conf.size == 0:
        return REJECT_ALL
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    # Precision of "accept everything at or above conf[i]", taken at the last
    # index of each run of equal confidences so ties are accepted together.
    precision = np.cumsum(ok) / np.arange(1, conf.size + 1)
    last_of_tie = np.append(conf[1:] != conf[:-1], True)
    reaching = np.flatnonzero(last_of_tie & (precision >= target_precision - 1e-12))
    return float(conf[reaching[-1]]) if reaching.size else REJECT_ALL


def choose_field_thresholds(
    answers: dict[str, tuple[Sequence[float], Sequence[bool]]], target_precision: float = 0.99
) -> dict[str, float]:
    """Per-field thresholds from ``{field: (confidences, correct)}``."""
    return {name: choose_thresholds(c, ok, target_precision) for name, (c, ok) in answers.items()}
