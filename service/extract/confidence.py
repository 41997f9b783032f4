"""Field confidence: the model's own certainty, checked against the text, then calibrated.

The raw score is the lowest probability the constrained decoder gave any
token of the value (one unsure token makes an unsure value), reduced when a
value that should be copied from the document cannot be found there, or when
the answer is null but the document prints the field's label. A
monotone map fitted on a validation split (isotonic regression, stored with
the model as points) turns raw scores into probabilities of being right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NOT_FOUND_FACTOR = 0.5


def raw_confidence(token_probs: list[float], evidence_expected: bool, evidence_found: bool) -> float:
    score = min(token_probs) if token_probs else 1.0
    if evidence_expected and not evidence_found:
        score *= NOT_FOUND_FACTOR
    return float(score)


@dataclass
class Calibration:
    """Piecewise-linear map from raw score to calibrated confidence (identity when not fitted)."""

    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict | None) -> "Calibration":
        data = data or {}
        return cls(list(data.get("x", [])), list(data.get("y", [])))

    def to_dict(self) -> dict:
        return {"x": self.x, "y": self.y}

    def __call__(self, score: float) -> float:
        if len(self.x) < 2:
            return float(score)
        return float(np.interp(score, self.x, self.y))
