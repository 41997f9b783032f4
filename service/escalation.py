"""Escalation: a second opinion for uncertain documents, and the decision after it.

The policy (issue 5): a document the model is unsure of is re-extracted by a
frontier model with the same schema, if one is configured and the month's
budget allows. Fields where both agree are accepted — their source becomes
``frontier`` and their confidence rises to ``1 - (1 - model) * (1 - frontier)``
— whatever the model's own confidence was. Disagreements, failed rules and
missing required values still go to review, with both candidates kept.
Without a frontier, over budget, or when the frontier fails, the document goes
to review and the decision says why.

Everything but :func:`escalate`'s one call to the client is pure; the job
persists what it returns.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from service.doctypes import DocumentType, FieldSpec
from service.evaluation import score_field
from service.exceptions import FrontierError
from service.extract.result import Extraction, FieldResult
from service.frontier import FrontierAnswer, FrontierClient
from service.routing import REVIEW, STRAIGHT_THROUGH, Decision, decide

__all__ = [
    "BUDGET_EXHAUSTED",
    "FRONTIER_AGREED",
    "FRONTIER_DISAGREEMENT",
    "FRONTIER_FAILED",
    "Escalation",
    "Merge",
    "agreement_confidence",
    "decide_after_escalation",
    "escalate",
    "merge",
    "values_agree",
]

# Reason codes this step adds to a decision.
BUDGET_EXHAUSTED = "budget_exhausted"  # the month's frontier budget is spent: review without a second opinion
FRONTIER_FAILED = "frontier_failed"  # the frontier gave no usable answer (``error`` says why)
FRONTIER_DISAGREEMENT = "frontier_disagreement"  # model and frontier differ on a field (``candidates``)
FRONTIER_AGREED = "frontier_agreed"  # informational: fields accepted because both agree (``accepted``)


def values_agree(spec: FieldSpec, ours: Any, theirs: Any) -> bool:
    """Whether two normalised values are the same answer, by the evaluation's scoring, both ways round."""
    return score_field(spec, ours, theirs) and score_field(spec, theirs, ours)


def agreement_confidence(model: float, frontier: float) -> float:
    """Two readings that agree are wrong together only if both are wrong (independence assumed)."""
    model = min(max(float(model), 0.0), 1.0) if model == model else 0.0  # NaN counts as no confidence
    return 1.0 - (1.0 - model) * (1.0 - min(max(float(frontier), 0.0), 1.0))


@dataclass
class Merge:
    """The model's extraction with the frontier's answer folded in."""

    extraction: Extraction
    agreed: list[str] = field(default_factory=list)
    disagreed: list[str] = field(default_factory=list)
    candidates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def fields_dict(self) -> dict[str, Any]:
        """The merged fields as stored: each field's ``to_dict()`` plus its ``candidates``."""
        return {
            name: {**result.to_dict(), "candidates": self.candidates.get(name, [])}
            for name, result in self.extraction.fields.items()
        }


def merge(doc_type: DocumentType, extraction: Extraction, frontier_values: dict[str, Any],
          frontier_confidence: float = 0.9) -> Merge:
    """Compare every field of the schema; a copy of *extraction* keeps the model's values and evidence.

    An agreeing field is marked ``source="frontier"`` with raised confidence
    (rows of an array field too); a disagreeing one keeps the model's value
    and gets the problem ``frontier_disagreement``. Both candidates are kept
    for every field.
    """
    merged = copy.deepcopy(extraction)
    out = Merge(merged)
    for spec in doc_type.fields:
        result = merged.fields.setdefault(spec.name, FieldResult(None, confidence=0.0))
        theirs = frontier_values.get(spec.name)
        out.candidates[spec.name] = [
            {"source": "model", "value": result.value, "confidence": round(float(result.confidence), 4)},
            {"source": "frontier", "value": theirs},
        ]
        if values_agree(spec, result.value, theirs):
            result.source = "frontier"
            result.confidence = agreement_confidence(result.confidence, frontier_confidence)
            for row in result.items or []:
                for cell in row.values():
                    cell.source = "frontier"
                    cell.confidence = agreement_confidence(cell.confidence, frontier_confidence)
            out.agreed.append(spec.name)
        else:
            if FRONTIER_DISAGREEMENT not in result.problems:
                result.problems.append(FRONTIER_DISAGREEMENT)
            out.disagreed.append(spec.name)
    return out


def decide_after_escalation(
    doc_type: DocumentType,
    merged: Merge,
    failures=(),
    thresholds: dict[str, float] | None = None,
    default_threshold: float = 0.9,
    has_text_layer: bool = True,
    before: Decision | None = None,
) -> Decision:
    """Decide again on the merged extraction: agreement settles low confidence, nothing else.

    Failed rules (validated on the merged values), missing required values and
    every disagreement keep the document in review. The ``frontier_agreed``
    note names the fields that were below their threshold in the model's
    decision *before* (or, without it, in this one) and are now accepted.
    """
    base = decide(doc_type, merged.extraction, failures, thresholds, default_threshold, has_text_layer)
    agreed = set(merged.agreed)
    low = [r["field"] for r in (before or base).reasons if r["code"] == "low_confidence"]
    settled = [name for name in low if name in agreed]
    reasons = [r for r in base.reasons if not (r["code"] == "low_confidence" and r.get("field") in agreed)]
    reasons += [
        {"code": FRONTIER_DISAGREEMENT, "field": name, "candidates": merged.candidates[name]} for name in merged.disagreed
    ]
    route = REVIEW if reasons else STRAIGHT_THROUGH
    if settled:
        reasons.append({"code": FRONTIER_AGREED, "accepted": settled})
    return Decision(route, tuple(reasons), escalated=True)


def with_reason(decision: Decision, reason: dict[str, Any], escalated: bool = False) -> Decision:
    return Decision(decision.route, (*decision.reasons, reason), escalated=escalated)


@dataclass
class Escalation:
    """What the escalation step did: the final decision, and what to persist."""

    decision: Decision
    extraction: Extraction  # merged when the frontier answered, else the model's
    merge: Merge | None = None
    answer: FrontierAnswer | None = None
    error: FrontierError | None = None
    provider: str = ""
    model: str = ""

    @property
    def called(self) -> bool:
        """A request went out (and may have been billed): the job records a frontier attempt."""
        return self.answer is not None or (self.error is not None and self.error.code != "circuit_open")

    @property
    def input_tokens(self) -> int:
        return self.answer.input_tokens if self.answer else (self.error.input_tokens if self.error else 0)

    @property
    def output_tokens(self) -> int:
        return self.answer.output_tokens if self.answer else (self.error.output_tokens if self.error else 0)

    @property
    def cost_usd(self) -> float:
        return self.answer.cost_usd if self.answer else (self.error.cost_usd if self.error else 0.0)


def escalate(
    doc_type: DocumentType,
    extraction: Extraction,
    text: str,
    decision: Decision,
    client: FrontierClient | None,
    spent_usd: float = 0.0,
    budget_usd: float = 0.0,
    failures=(),
    thresholds: dict[str, float] | None = None,
    default_threshold: float = 0.9,
    frontier_confidence: float = 0.9,
    revalidate=None,
) -> Escalation:
    """Turn a review decision into an escalation where the policy allows one.

    *revalidate* maps merged values to rule failures (the job passes
    ``lambda values: validate(doc_type, values)``); without it *failures* is
    reused, which is right because merged values are the model's values.
    """
    if decision.route != REVIEW or not decision.escalatable or client is None:
        return Escalation(decision, extraction)
    if spent_usd >= budget_usd:
        reason = {"code": BUDGET_EXHAUSTED, "spent_usd": round(spent_usd, 4), "budget_usd": round(budget_usd, 2)}
        return Escalation(with_reason(decision, reason), extraction, provider=client.provider, model=client.model)
    try:
        answer = client.extract(doc_type, text)
    except FrontierError as exc:
        reason = {"code": FRONTIER_FAILED, "error": exc.code, "message": exc.detail}
        outcome = Escalation(decision, extraction, error=exc, provider=client.provider, model=client.model)
        outcome.decision = with_reason(decision, reason, escalated=outcome.called)
        return outcome
    merged = merge(doc_type, extraction, answer.values, frontier_confidence)
    if revalidate is not None:
        failures = revalidate(merged.extraction.values())
    final = decide_after_escalation(doc_type, merged, failures, thresholds, default_threshold, before=decision)
    return Escalation(final, merged.extraction, merged, answer, provider=client.provider, model=client.model)
