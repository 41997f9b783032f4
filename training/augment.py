"""More than one view of an approved document: its table rows in another order.

An approved document is seen several times in a retraining run. Shown
identically each time, a model learns the rows together with whatever shares
their lines: where a sidebar prints "Klant" beside the fourth row, it learns
"Klant" and that row as one, and on a fresh document of the layout it takes
the sidebar's labels into descriptions and skips or merges rows. So each
repeat after the first swaps the rows of the table among the lines they are
printed on (the description and everything right of it move; what is printed
left of the description stays) and the target lists them in their new order.
Totals are unchanged, since the same rows are billed.

A document is shown as it is when its rows cannot be placed one to a line
(a description wrapped over two lines, a description printed twice).
"""

from __future__ import annotations

import random
import re

from service.doctypes import DocumentType
from training.dataset import TrainExample

_GAP = "  "  # compacted text separates columns with two spaces


def _row_lines(lines: list[str], descriptions: list[str]) -> list[tuple[int, int]] | None:
    """For each description, (line, offset) where it starts a cell, in document order; None if not one to a line."""
    placed: list[tuple[int, int]] = []
    after = 0
    for description in descriptions:
        if not description:
            return None
        found = None
        for li in range(after, len(lines)):
            line = lines[li]
            for match in re.finditer(re.escape(description), line):
                start, end = match.span()
                if (start == 0 or line.endswith(_GAP, 0, start)) and (end == len(line) or line.startswith(_GAP, end)):
                    found = (li, start)
                    break
            if found:
                break
        if found is None:
            return None
        placed.append(found)
        after = found[0] + 1
    return placed


def shuffled_rows(doc_type: DocumentType, example: TrainExample, rng: random.Random) -> TrainExample | None:
    """*example* with the rows of each array field whose items print a description moved among their lines."""
    lines = example.text.split("\n")
    target = dict(example.target)
    changed = False
    for spec in doc_type.fields:
        anchor = next((item.name for item in spec.items if item.printed_words), None)
        rows = target.get(spec.name)
        unlabelled = example.labelled is not None and spec.name not in example.labelled
        if anchor is None or unlabelled or not isinstance(rows, list) or len(rows) < 2:
            continue
        placed = _row_lines(lines, [str(row.get(anchor) or "") for row in rows])
        if placed is None:
            continue
        order = list(range(len(rows)))
        rng.shuffle(order)
        tails = [lines[li][off:] for li, off in placed]
        for (li, off), source in zip(placed, order):
            lines[li] = lines[li][:off] + tails[source]
        target[spec.name] = [rows[source] for source in order]
        changed = changed or order != sorted(order)
    if not changed:
        return None
    return TrainExample(example.id, example.doc_type, "\n".join(lines), target, example.labelled)


def repeats(doc_types: dict[str, DocumentType], example: TrainExample, times: int, seed: int) -> list[TrainExample]:
    """*example* once as approved, then *times* - 1 views with its rows reordered (as approved where they cannot be)."""
    rng = random.Random(f"{seed}:{example.id}")
    views = [example]
    for _ in range(times - 1):
        views.append(shuffled_rows(doc_types[example.doc_type], example, rng) or example)
    return views
