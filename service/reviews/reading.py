"""Reading an extraction for review: reasons, confidences, candidates, and what may be approved unread."""

from __future__ import annotations

import math
from typing import Any

from service.models import Document, ExtractionAttempt, User

# How the queue names each routing reason; unknown codes are shown as they are.
REASON_LABELS = {
    "low_confidence": "low confidence",
    "missing_required": "missing value",
    "failed_rule": "failed rule",
    "frontier_disagreement": "frontier disagreement",
    "no_text_layer": "no text layer",
    "truncated": "truncated",
}

# Reasons a reviewer may dismiss in bulk when every field clears the threshold anyway.
DISMISSABLE = frozenset({"truncated", "low_confidence", "frontier_agreed"})


def reason_label(code: str) -> str:
    return REASON_LABELS.get(code, code.replace("_", " "))


def actor_of(user: User) -> str:
    return f"user:{user.email}"


def lowest_confidence(fields: dict[str, Any]) -> float | None:
    """The smallest confidence of any field or line-item cell."""
    found: list[float] = []
    for result in fields.values():
        if not isinstance(result, dict):
            continue
        if result.get("items"):
            found += [cell.get("confidence", 0.0) for row in result["items"] for cell in row.values()]
        elif result.get("confidence") is not None:
            found.append(float(result["confidence"]))
    return min(found) if found else None


def latest_machine_attempt(doc: Document, engine: str | None = None) -> ExtractionAttempt | None:
    for attempt in reversed(doc.extractions):
        if attempt.engine != "human" and (engine is None or attempt.engine == engine):
            return attempt
    return None


def same_value(a: Any, b: Any) -> bool:
    """Equality that treats 12 and 12.0 alike and compares rows cell by cell."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b


def candidates(doc: Document) -> dict[str, list[dict[str, Any]]]:
    """Fields on which the model and the frontier model disagree, with both answers.

    Taken from a field's own ``candidates`` list (written by escalation for
    every field; only differing ones count), otherwise by comparing the latest
    model and frontier attempts. Line-item tables are edited, not picked.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    latest = doc.latest_extraction
    for name, result in (latest.fields if latest else {}).items():
        found = result.get("candidates") if isinstance(result, dict) and "items" not in result else None
        if found and len(found) > 1 and not all(same_value(found[0].get("value"), c.get("value")) for c in found):
            out[name] = [{"source": c.get("source", "?"), "value": c.get("value")} for c in found]
    model, frontier = latest_machine_attempt(doc, "model"), latest_machine_attempt(doc, "frontier")
    if model is None or frontier is None:
        return out
    for name, result in model.fields.items():
        other = frontier.fields.get(name)
        if name in out or not isinstance(other, dict) or "items" in result:
            continue
        if not same_value(result.get("value"), other.get("value")):
            out[name] = [{"source": "model", "value": result.get("value")},
                         {"source": "frontier", "value": other.get("value")}]
    return out


def dismissable(doc: Document, threshold: float) -> bool:
    """Every field clears *threshold*, no rule failed and every reason is one a person may wave through."""
    attempt = doc.latest_extraction
    if attempt is None or attempt.validation:
        return False
    low = lowest_confidence(attempt.fields)
    codes = {r.get("code") for r in doc.route_reasons or []}
    return low is not None and low >= threshold and codes <= DISMISSABLE
