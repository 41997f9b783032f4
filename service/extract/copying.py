"""Values that must be copied from the document, held to it while they are written.

The schema says what shape a date has; it cannot say which dates the document
prints. Left to the schema alone, the model writes a date-shaped string
assembled from nearby digits ("18/03/2018" beside "25-03-18 18:47", a till
number "00500288") as readily as the date itself. So for such a field the
document is read first for every printed value of the field's shape (a whole
word run matching the field's pattern), and while the value is being written
only tokens that keep it a prefix of one of those, and close it on a whole
one, are allowed: every value it can end up with is printed there.

A field whose values are free text but printed (a line item's description,
``"x-docket-printed": "words"``) is held the same way to a run of the
document's words (:class:`PrintedRuns`): words as printed, one space between
them, never across a column gap (two spaces in compacted text), so "Klant"
from a sidebar and "Onderhoudscontract" from the table beside it on the same
line cannot be joined into one description, nor a word be cut ("Kopieerpapier
A4, 5" of "A4, 500 vel") or made up ("Pantech paper"). A run may go on at a
cell of the next line, where a long description wraps.

This narrows the schema's choices and never replaces them: where the document
prints nothing of the shape, or no allowed token keeps to what it prints, the
schema's own choices stand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.extract.prompt import COLUMN_GAP
from service.extract.vocabulary import TokenVocabulary, escaped_at

MAX_VALUE_CHARS = 48  # a printed date, with its time, is shorter than this
LOOKAHEAD_BYTES = 24  # longer than any word piece of the vocabulary (the longer tokens are runs of spaces or symbols)


@dataclass(frozen=True)
class PrintedShape:
    """What a field's printed values look like: a pattern, and a reader that returns None for a misfit;
    or, with *words*, any run of the document's words (free text copied from it)."""

    pattern: str | None
    reads: Callable[[str], Any] = str  # e.g. normalize_date: "1300-88-6555" has the shape but is no date
    words: bool = False


PRINTED_WORDS = PrintedShape(None, words=True)


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


class PrintedRuns:
    """The runs of a document's words, as the model writes them inside a JSON string.

    A position is (line, cell, offset) in the document's cells (a line split at
    its column gaps, JSON-escaped). A run starts where a word starts, goes on
    through its cell byte by byte, and past the cell's end only with a space
    onto the start of a cell of the next line; it ends where a word ends
    (before a space or at the cell's end).
    """

    def __init__(self, text: str):
        cells = [[" ".join(cell.split()) for cell in COLUMN_GAP.split(line.strip()) if cell.strip()] for line in text.split("\n")]
        self.lines = [[json.dumps(cell, ensure_ascii=False)[1:-1].encode("utf-8") for cell in line] for line in cells]
        self.starts = [(li, ci, off) for li, line in enumerate(self.lines) for ci, cell in enumerate(line)
                       for off in range(len(cell)) if (off == 0 or cell[off - 1] == 0x20) and cell[off] != 0x20]
        self._last: tuple[bytes, list] = (b"", self.starts)

    def _ends_word(self, li: int, ci: int, off: int) -> bool:
        """A run ends with a word: at its cell's end or before a space, never on the space."""
        cell = self.lines[li][ci]
        return 0 < off and cell[off - 1] != 0x20 and (off == len(cell) or cell[off] == 0x20)

    def _advance(self, positions: list, data: bytes) -> list:
        for byte in data:
            moved = set()
            for li, ci, off in positions:
                cell = self.lines[li][ci]
                if off < len(cell):
                    if cell[off] == byte:
                        moved.add((li, ci, off + 1))
                elif byte == 0x20 and li + 1 < len(self.lines):
                    moved.update((li + 1, cj, 0) for cj in range(len(self.lines[li + 1])))
            positions = list(moved)
            if not positions:
                break
        return positions

    def positions(self, written: bytes) -> list:
        """Where the runs that begin with *written* stand now (incremental: values grow a token at a time)."""
        before, at = self._last
        at = self._advance(at, written[len(before):]) if written.startswith(before) else self._advance(self.starts, written)
        self._last = (written, at)
        return at

    def continuations(self, positions: list, limit: int = LOOKAHEAD_BYTES) -> tuple[set[bytes], set[bytes]]:
        """Every continuation of up to *limit* bytes from *positions*, and those that end a word."""
        going, ending = set(), set()
        stack = [(p, b"") for p in positions]
        while stack:
            (li, ci, off), done = stack.pop()
            if self._ends_word(li, ci, off):
                ending.add(done)
            cell = self.lines[li][ci]
            rest = cell[off:off + limit - len(done)]
            for n in range(1, len(rest) + 1):
                going.add(done + rest[:n])
                if self._ends_word(li, ci, off + n):
                    ending.add(done + rest[:n])
            if off + len(rest) == len(cell) and len(done) + len(rest) < limit and li + 1 < len(self.lines):
                wrapped = done + rest + b" "
                going.add(wrapped)
                stack.extend(((li + 1, cj, 0), wrapped) for cj in range(len(self.lines[li + 1])))
        return going, ending


def _last_quote(data: bytes | bytearray) -> int:
    """Index of the last double quote that is not escaped, or -1."""
    quote = data.rfind(b'"')
    while quote >= 0 and escaped_at(data, quote):
        quote = data.rfind(b'"', 0, quote)
    return quote


class CopyConstraint:
    """Allowed tokens for the values of some keys, restricted to what the document prints in their shape."""

    def __init__(self, shapes: dict[str, PrintedShape], source: bytes, vocab: TokenVocabulary):
        text = source.decode("utf-8", errors="replace")
        self._values: dict[bytes, set[bytes]] = {}
        self._prefixes: dict[bytes, set[bytes]] = {}
        self._runs: dict[bytes, PrintedRuns] = {}
        for key, shape in shapes.items():
            marker = b'"' + key.encode("utf-8") + b'":"'
            if shape.words:
                self._runs[marker] = PrintedRuns(text)
                continue
            values = {v.encode("utf-8") for v in printed_values(shape, text)}
            if values:
                self._values[marker] = values
                self._prefixes[marker] = {v[:n] for v in values for n in range(len(v) + 1)}
        self._vocab = vocab

    def printed(self, key: str) -> set[str]:
        """The values the document prints for *key* (empty when it is not constrained here)."""
        values = self._values.get(b'"' + key.encode("utf-8") + b'":"', set())
        return {v.decode("utf-8") for v in values}

    def _marker_of(self, out_bytes: bytes | bytearray) -> tuple[bytes, bytes] | None:
        """(marker, text written so far) while inside a constrained value, else None."""
        quote = _last_quote(out_bytes)
        if quote < 0:
            return None
        for marker in (*self._values, *self._runs):
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
        if marker in self._runs:
            return self._restrict_to_runs(self._runs[marker], allowed, written)
        values, prefixes = self._values[marker], self._prefixes[marker]
        # Only a token starting with a byte some printed value continues with can
        # keep to one: a cheap cut before the exact check of each candidate.
        next_bytes = {v[len(written)] for v in values if len(v) > len(written) and v.startswith(written)}
        if written in values:
            next_bytes.add(ord('"'))
        candidates = allowed[np.isin(self._vocab.first_bytes[allowed], list(next_bytes))]
        keep = []
        for t in candidates.tolist():
            piece = self._vocab.token_bytes[t] or b""
            closing = piece.find(b'"')
            if closing < 0:
                if written + piece in prefixes:
                    keep.append(t)
            elif written + piece[:closing] in values:
                keep.append(t)
        return np.asarray(keep, dtype=allowed.dtype) if keep else None

    def _restrict_to_runs(self, runs: PrintedRuns, allowed: np.ndarray, written: bytes) -> np.ndarray | None:
        """The tokens of *allowed* that go on along a run of printed words, or close the value at a word's end."""
        positions = runs.positions(written)
        if not positions:
            return None
        going, ending = runs.continuations(positions)
        ids_of = self._vocab.ids_by_bytes
        keep = {ids_of[piece] for piece in going if piece in ids_of}
        if written:
            closers = self._vocab.closers_by_prefix
            keep.update(t for done in ending for t in closers.get(done, ()))
        if not keep:
            return None
        held = allowed[np.isin(allowed, np.fromiter(keep, dtype=allowed.dtype))]
        return held if len(held) else None

