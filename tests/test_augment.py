"""Row views of an approved document: its table rows moved among their lines, with the target in the new order."""

from __future__ import annotations

import random

from config.settings import Settings
from service.doctypes import load_document_types
from training.augment import repeats, shuffled_rows
from training.dataset import TrainExample
from training.synth import HELD_OUT_FAMILY, generate_invoices

DOC_TYPES = load_document_types(Settings().schema_dir)


def _sidebar_invoice(seed: int = 4) -> TrainExample:
    ex = next(iter(generate_invoices(1, seed, families=[HELD_OUT_FAMILY], keep_pdf=False)))
    return TrainExample(ex.id, ex.doc_type, ex.text, ex.target, None)


def _line_of(text: str, description: str) -> str:
    return next(line for line in text.split("\n") if f"  {description}  " in f"  {line}  ")


def test_rows_move_with_their_numbers_and_the_sidebar_stays():
    ex = _sidebar_invoice()
    rows = ex.target["line_items"]
    view = shuffled_rows(DOC_TYPES["invoice"], ex, random.Random(7))
    assert view is not None and view.text != ex.text
    moved = view.target["line_items"]
    assert sorted(map(str, moved)) == sorted(map(str, rows)) and moved != rows
    before, after = ex.text.split("\n"), view.text.split("\n")
    assert len(before) == len(after)
    for row in moved:  # each row is printed whole on its new line: description, quantity, price and amount
        line = _line_of(view.text, row["description"])
        assert all(str(row[k]) in line for k in ("quantity", "unit_price", "amount") if row[k] is not None)
    order = [next(i for i, line in enumerate(after) if row["description"] in line) for row in moved]
    assert order == sorted(order)  # the target lists them in document order
    for old, new in zip(before, after):  # what is printed left of a description (the sidebar) stays put
        row = next((r for r in rows if r["description"] in old), None)
        if row is None:
            assert old == new
        else:
            assert new.startswith(old[: old.index(row["description"])])


def test_a_document_whose_rows_cannot_be_placed_one_to_a_line_is_shown_as_it_is():
    ex = _sidebar_invoice()
    first = ex.target["line_items"][0]["description"]
    twice = TrainExample(ex.id, ex.doc_type, ex.text + f"\nNote: {first}  again", ex.target, None)
    wrapped = {**ex.target, "line_items": [{**ex.target["line_items"][0], "description": first + " (wrapped onto two lines)"},
                                            *ex.target["line_items"][1:]]}
    assert shuffled_rows(DOC_TYPES["invoice"], TrainExample(ex.id, ex.doc_type, ex.text, wrapped, None), random.Random(1)) is None
    assert shuffled_rows(DOC_TYPES["invoice"], twice, random.Random(1)) is not None  # the first placement in order wins
    views = repeats(DOC_TYPES, ex, 4, seed=1)
    assert len(views) == 4 and views[0] is ex and len({v.text for v in views}) > 1
    assert [v.text for v in repeats(DOC_TYPES, ex, 4, seed=1)] == [v.text for v in views]  # seeded
