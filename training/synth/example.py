"""The unit of synthetic training data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Example:
    """One training document.

    ``target`` is exactly what the model writes (decode schema: raw printed
    text for numbers and dates); ``labels`` is the normalised truth in the API
    schema, known from construction. ``meta`` says how it was made (family,
    locale) so data can be balanced and held-out families found.
    """

    id: str
    doc_type: str
    text: str
    target: dict[str, Any]
    labels: dict[str, Any]
    pdf: bytes | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "doc_type": self.doc_type, "text": self.text, "target": self.target,
                "labels": self.labels, "meta": self.meta}
