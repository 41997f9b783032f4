"""The promotion gate: a candidate replaces the active model only if it is measurably no worse.

Both models are scored on the same golden set (approved documents held back
from training). The candidate passes when

  * its overall field accuracy is at least the active model's, and
  * no field's accuracy drops by more than ``margin`` (default 0.01 = 1 point);
    a field is judged on its own only when the golden set labels it at least
    ``min_labelled`` times (default 10), because on a handful of values one
    answer moves the accuracy by tens of points: 1/1 → 0/1 is a "100-point
    drop" that says nothing about the model. Such fields still count in the
    overall accuracy, and the comparison lists them as too few to judge;

and, for each guard suite given (the evaluation splits of ../shared/data),
its overall accuracy drops by no more than ``margin``. Otherwise it is
rejected, and the comparison says why. Pure: counts in, decision out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from service.evaluation import Report

EPSILON = 1e-9  # accuracies are ratios of counts: compare them without float noise


@dataclass
class Scores:
    """Correct and labelled counts per field ("doc_type.field") on one evaluation set."""

    fields: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_reports(cls, reports: Iterable[Report]) -> Scores:
        out: dict[str, tuple[int, int]] = {}
        for report in reports:
            for name, f in report.fields.items():
                out[f"{report.doc_type}.{name}"] = (f.correct, f.labelled)
        return cls(out)

    @classmethod
    def from_report_dict(cls, report: dict[str, Any]) -> Scores:
        """From a report as ``Report.to_dict`` writes it (a stored or cached one)."""
        return cls({f"{report['doc_type']}.{name}": (int(f["correct"]), int(f["labelled"]))
                    for name, f in report["fields"].items()})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scores:
        return cls({k: (int(v["correct"]), int(v["labelled"])) for k, v in data.get("fields", {}).items()})

    @property
    def labelled(self) -> int:
        return sum(n for _, n in self.fields.values())

    @property
    def overall(self) -> float | None:
        n = self.labelled
        return sum(c for c, _ in self.fields.values()) / n if n else None

    def accuracy(self, name: str) -> float | None:
        correct, n = self.fields.get(name, (0, 0))
        return correct / n if n else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "labelled": self.labelled,
            "fields": {k: {"correct": c, "labelled": n, "accuracy": c / n if n else None} for k, (c, n) in self.fields.items()},
        }


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str]
    comparison: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": "promote" if self.promote else "reject", "reasons": self.reasons, **self.comparison}


MIN_LABELLED = 10  # golden values a field needs before its own drop can veto a candidate


def allowed_drop(margin: float, labelled: int) -> float:
    """The most a field may drop: the margin, but never less than one answer of the *labelled* ones.

    A set that labels a field 17 times cannot show a drop smaller than one
    answer (5.9 points): one changed answer there is within what the set can
    resolve, and holding it against the candidate vetoes nearly every
    retraining once the golden set has grown past the small-field cut-off
    (a run that took fresh documents of a new layout from 73% to 97% was
    rejected for one vendor name in 17). Two lost answers still veto. From
    1 / margin labelled values on (100 at 1 point) the margin is the finer.
    A negative margin (demanding a gain) is taken as given.
    """
    return max(margin, 1 / labelled) if labelled and margin >= 0 else margin


def judge(candidate: Scores, active: Scores | None, margin: float = 0.01,
          guards: dict[str, tuple[Scores, Scores]] | None = None,
          min_labelled: int = MIN_LABELLED) -> GateDecision:
    """Compare *candidate* with *active* on the golden set (and *guards*: name → (candidate, active))."""
    reasons: list[str] = []
    fields: dict[str, Any] = {}
    too_few: list[str] = []
    if candidate.overall is None:
        reasons.append("the golden set is empty: approve more documents before retraining can be judged")
    elif active is not None and active.overall is not None:
        if candidate.overall + EPSILON < active.overall:
            reasons.append(f"overall accuracy {candidate.overall:.2%} is below the active model's {active.overall:.2%}")
        for name in sorted(set(candidate.fields) | set(active.fields)):
            before, after = active.accuracy(name), candidate.accuracy(name)
            delta = None if before is None or after is None else after - before
            labelled = min(candidate.fields.get(name, (0, 0))[1], active.fields.get(name, (0, 0))[1])
            judged = labelled >= min_labelled
            allowed = allowed_drop(margin, labelled)
            fields[name] = {"active": before, "candidate": after, "delta": delta,
                            "labelled": labelled, "judged": judged, "allowed_drop": allowed}
            if not judged:
                too_few.append(name)
            elif delta is not None and -delta > allowed + EPSILON:
                reasons.append(f"{name} drops {-delta:.2%} ({before:.2%} → {after:.2%}), more than the {allowed:.2%} allowed"
                               + (f" (one answer of {labelled})" if allowed > margin else ""))
    guard_out: dict[str, Any] = {}
    for name, (cand, act) in (guards or {}).items():
        delta = None if cand.overall is None or act.overall is None else cand.overall - act.overall
        allowed = allowed_drop(margin, min(cand.labelled, act.labelled))
        guard_out[name] = {"active": act.overall, "candidate": cand.overall, "delta": delta, "allowed_drop": allowed}
        if delta is not None and -delta > allowed + EPSILON:
            reasons.append(f"{name}: overall accuracy drops {-delta:.2%}, more than the {allowed:.2%} allowed")
    comparison = {
        "margin": margin,
        "min_labelled": min_labelled,
        "too_few_to_judge": too_few,
        "overall": {"active": active.overall if active else None, "candidate": candidate.overall,
                    "labelled": candidate.labelled},
        "fields": fields,
        "guards": guard_out,
        "candidate": candidate.to_dict(),
        "active": active.to_dict() if active else None,
    }
    return GateDecision(not reasons, reasons, comparison)
