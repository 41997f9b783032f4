"""Confidence calibration and routing thresholds, fitted on a validation split.

Run the uncalibrated model on documents it was not trained on, pair each
labelled field's raw confidence with whether the value was right, fit an
isotonic map (monotone: a higher raw score never means less confidence), and
choose per-field thresholds that reach the target precision. The result is
stored with the model, so serving only interpolates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from service.evaluation import Example, FieldOutcome, run_eval
from service.extract.engine import Engine
from service.ingest import IngestedDocument
from service.extract.confidence import Calibration
from service.routing import choose_field_thresholds

MAX_POINTS = 64


def extractor(engine: Engine) -> Callable[[str, Any], Any]:
    """*engine* as the ``extract(doc_type, source)`` that ``run_eval`` calls: text read as serving reads a plain-text upload."""
    def extract(doc_type: str, source: Any):
        text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else source
        doc = IngestedDocument(text=text, media_type="text/plain", page_count=text.count("\f") + 1)
        return engine.extract(engine.doc_types[doc_type], doc)
    return extract


def collect_outcomes(extract_fn, datasets: Iterable[tuple[Path, Callable[[Example], bool] | None]], limit: int | None = None) -> list[FieldOutcome]:
    outcomes: list[FieldOutcome] = []
    for path, include in datasets:
        report = run_eval(extract_fn, path, include=include, limit=limit, apply_rules=False)
        outcomes += [o for r in report.records for o in r.outcomes]
    return outcomes


def fit_calibration(scores: list[float], correct: list[bool]) -> Calibration:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(np.asarray(scores, dtype=float), np.asarray(correct, dtype=float))
    xs, ys = np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_)
    if len(xs) > MAX_POINTS:
        keep = np.unique(np.linspace(0, len(xs) - 1, MAX_POINTS).round().astype(int))
        xs, ys = xs[keep], ys[keep]
    return Calibration([round(float(x), 6) for x in xs], [round(float(y), 6) for y in ys])


def calibrate(outcomes: list[FieldOutcome], target_precision: float = 0.99) -> dict:
    calibration = fit_calibration([o.confidence for o in outcomes], [o.correct for o in outcomes])
    per_field: dict[str, tuple[list[float], list[bool]]] = {}
    for o in outcomes:
        confs, oks = per_field.setdefault(o.field, ([], []))
        confs.append(calibration(o.confidence))
        oks.append(o.correct)
    thresholds = choose_field_thresholds(per_field, target_precision)
    return {
        "calibration": calibration.to_dict(),
        "thresholds": {k: (v if v <= 1.0 else 1.01) for k, v in thresholds.items()},
        "validation": {
            "fields": len(outcomes),
            "accuracy": round(sum(o.correct for o in outcomes) / max(1, len(outcomes)), 4),
            "target_precision": target_precision,
        },
    }
