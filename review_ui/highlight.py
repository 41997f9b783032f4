"""The document text cut into runs, each knowing which fields' evidence covers it."""

from __future__ import annotations


def evidence_spans(views: list) -> list[tuple[int, int, str]]:
    """(start, end, key) for every field and line-item cell with evidence."""
    spans = []
    for view in views:
        cells = [(view.key, view.evidence)] + [(c.key, c.evidence) for row in view.rows for c in row]
        for key, evidence in cells:
            if isinstance(evidence, dict) and all(isinstance(evidence.get(k), int) for k in ("start", "end")):
                spans.append((evidence["start"], evidence["end"], key))
    return spans


def runs(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[str, tuple[str, ...]]]:
    """Consecutive pieces of *text* and the keys of the spans covering each (overlaps allowed)."""
    clipped = [(max(0, s), min(len(text), e), k) for s, e, k in spans if min(len(text), e) > max(0, s)]
    cuts = sorted({0, len(text), *(s for s, _, _ in clipped), *(e for _, e, _ in clipped)})
    out: list[tuple[str, tuple[str, ...]]] = []
    for start, end in zip(cuts, cuts[1:]):
        keys = tuple(k for s, e, k in clipped if s <= start and end <= e)
        out.append((text[start:end], keys))
    return out
