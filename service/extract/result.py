"""What the extraction engine returns: plain data, no Flask, no SQLAlchemy."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Evidence:
    """Where a value was found: character offsets into the document text, and the page."""

    start: int
    end: int
    page: int  # 1-based
    text: str


@dataclass
class FieldResult:
    """One field of one extraction.

    ``value`` is normalised (ISO dates, decimal amounts, upper-case codes);
    ``raw`` is the text the model wrote; ``confidence`` is calibrated to
    [0, 1]. For an array field, ``items`` holds one dict of FieldResult per row
    and ``value`` the list of normalised row dicts.
    """

    value: Any
    raw: Any = None
    confidence: float = 0.0
    evidence: Evidence | None = None
    source: str = "model"  # model | frontier | human
    items: list[dict[str, "FieldResult"]] | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "value": self.value,
            "raw": self.raw,
            "confidence": round(float(self.confidence), 4),
            "evidence": asdict(self.evidence) if self.evidence else None,
            "source": self.source,
            "problems": list(self.problems),
        }
        if self.items is not None:
            out["items"] = [{k: v.to_dict() for k, v in row.items()} for row in self.items]
        return out


@dataclass
class Extraction:
    """The engine's answer for one document."""

    doc_type: str
    fields: dict[str, FieldResult]
    model_version: str
    timings_ms: dict[str, float] = field(default_factory=dict)  # prefill, decode, mask, total
    tokens: dict[str, int] = field(default_factory=dict)  # prompt, output, model_calls
    warnings: list[str] = field(default_factory=list)  # e.g. "pages 3-5 left out: context budget"
    raw_json: str = ""

    def values(self) -> dict[str, Any]:
        return {name: f.value for name, f in self.fields.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_type": self.doc_type,
            "model_version": self.model_version,
            "fields": {name: f.to_dict() for name, f in self.fields.items()},
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "tokens": dict(self.tokens),
            "warnings": list(self.warnings),
        }
