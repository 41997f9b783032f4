"""Values that must be copied from the document, held to it while they are written.

The schema says what shape a date has; it cannot say which dates the document
prints. Left to the schema alone, the model writes a date-shaped string
assembled from nearby digits ("18/03/2018" beside "25-03-18 18:47", a till
number "00500288") as readily as the date itself. So for such a field the
document is read first for every printed value of the field's shape (a whole
word run matching the field's pattern), and while the value is being written
only tokens that keep it a prefix of one of those, and close it on a whole
one, are allowed: every value it can end up with is printed there.

This narrows the schema's choices and never replaces them: where the document
prints nothing of the shape, or no allowed token keeps to what it prints, the
schema's own choices stand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.extract.vocabulary import TokenVocabulary

MAX_VALUE_CHARS = 48  # a printed date, with its time, is shorter than this


@dataclass(frozen=True)
class PrintedShape:
    """What a field's printed values look like: a pattern, and a reader that returns None for a misfit."""

    pattern: str
    reads: Callable[[str], Any] = str  # e.g. normalize_date: "1300-88-6555" has the shape but is no date


def printed_values(shape: PrintedShape, text: str) -> set[str]:
    """Every run of *text* that matches the shape's pattern whole, neither starts nor ends
    inside a word, and reads as a value."""
    body = shape.pattern.removeprefix("^").removesuffix("$")
    whole = re.compile(f"(?:{body})")
    found: set[str] = set()
    for match in re.finditer(rf"(?<![^\W_])(?=({body}))", text):
        start, longest = match.start(), match.group(1)
        for end in range(start + 1, start + min(len(longest), MAX_VALUE_CHARS) + 1):
            if (end == len(text) or not text[end].isalnum() or not text[end - 1].isalnum()) and whole.fullmatch(text, start, end):
                found.add(text[start:end].strip())
    return {value for value in found if value and shape.reads(value) is not None}


class CopyConstraint:
    """Allowed tokens for the values of some keys, restricted to what the document prints in their shape."""

    def __init__(self, shapes: dict[str, PrintedShape], source: bytes, vocab: TokenVocabulary):
        text = source.decode("utf-8", errors="replace")
        self._values: dict[bytes, set[bytes]] = {}
        self._prefixes: dict[bytes, set[bytes]] = {}
        for key, shape in shapes.items():
            values = {v.encode("utf-8") for v in printed_values(shape, text)}
            if values:
                marker = b'"' + key.encode("utf-8") + b'":"'
                self._values[marker] = values
                self._prefixes[marker] = {v[:n] for v in values for n in range(len(v) + 1)}
        self._token_bytes = vocab.token_bytes
        self._first_byte = vocab.first_bytes

    def printed(self, key: str) -> set[str]:
        """The values the document prints for *key* (empty when it is not constrained here)."""
        values = self._values.get(b'"' + key.encode("utf-8") + b'":"', set())
        return {v.decode("utf-8") for v in values}

    def _marker_of(self, out_bytes: bytes | bytearray) -> tuple[bytes, bytes] | None:
        """(marker, text written so far) while inside a constrained value, else None."""
        quote = out_bytes.rfind(b'"')
        if quote < 0:
            return None
        for marker in self._values:
            if out_bytes.endswith(marker, 0, quote + 1):
                return marker, bytes(out_bytes[quote + 1 :])
        return None

    def restrict(self, allowed: np.ndarray, out_bytes: bytes | bytearray) -> np.ndarray | None:
        """The tokens of *allowed* that keep the value being written to a printed one;
        None outside a constrained value or when none does (the schema's choice stands)."""
        inside = self._marker_of(out_bytes)
        if inside is None:
            return None
        marker, written = inside
        values, prefixes = self._values[marker], self._prefixes[marker]
        # Only a token starting with a byte some printed value continues with can
        # keep to one: a cheap cut before the exact check of each candidate.
        next_bytes = {v[len(written)] for v in values if len(v) > len(written) and v.startswith(written)}
        if written in values:
            next_bytes.add(ord('"'))
        candidates = allowed[np.isin(self._first_byte[allowed], list(next_bytes))]
        keep = []
        for t in candidates.tolist():
            piece = self._token_bytes[t] or b""
            closing = piece.find(b'"')
            if closing < 0:
                if written + piece in prefixes:
                    keep.append(t)
            elif written + piece[:closing] in values:
                keep.append(t)
        return np.asarray(keep, dtype=allowed.dtype) if keep else None
