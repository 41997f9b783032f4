"""Where each value sits in the decoder's compact JSON output.

The decoder knows the probability of every output token; to give each field
a confidence we need the byte range of its value. The output is compact JSON
that the schema guaranteed, so a small scanner suffices.
"""

from __future__ import annotations

from typing import Any

Span = tuple[int, int]


class Rows(list):
    """The spans of an array's rows, plus the span of the whole array."""

    span: Span = (0, 0)


def _skip_string(data: bytes, i: int) -> int:
    i += 1  # opening quote
    while data[i] != 0x22:
        i += 2 if data[i] == 0x5C else 1
    return i + 1


def _scan(data: bytes, i: int) -> tuple[int, Any]:
    """Parse one value at *i*: returns (end, node); leaves are spans, containers dicts/lists of nodes."""
    c = data[i]
    if c == 0x7B:  # {
        node: dict[str, Any] = {}
        i += 1
        while data[i] != 0x7D:
            key_end = _skip_string(data, i)
            key = data[i + 1 : key_end - 1].decode("utf-8")
            i, node[key] = _scan(data, key_end + 1)  # skip ':'
            if data[i] == 0x2C:
                i += 1
        return i + 1, node
    if c == 0x5B:  # [
        rows = Rows()
        start = i
        i += 1
        while data[i] != 0x5D:
            i, row = _scan(data, i)
            rows.append(row)
            if data[i] == 0x2C:
                i += 1
        rows.span = (start, i + 1)
        return i + 1, rows
    start = i
    if c == 0x22:
        i = _skip_string(data, i)
    else:
        while i < len(data) and data[i] not in b",]}":
            i += 1
    return i, (start, i)


def value_spans(data: bytes) -> dict[str, Any]:
    """Spans of every value in a complete compact JSON object, nested like the object."""
    _, node = _scan(data, 0)
    return node


def token_spans(pieces: list[bytes]) -> list[Span]:
    spans, pos = [], 0
    for piece in pieces:
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    return spans
