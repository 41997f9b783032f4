"""Drafts for speculation: where the decoder's guesses of the next bytes come from.

A draft only widens a forward pass when it is wrong, so these tests pin down
that the guesses are the likely ones: the document's text after what a value
has written so far, in the order the document prints values, and the keys and
nulls the output repeats.
"""

from __future__ import annotations

from itertools import islice

from service.extract.drafting import Drafter, continuations

LAYOUT = b"Widget A   2   12.50   25.00\nWidget B   1   4.00   4.00\nWidget A   1   12.50   12.50\nTotal 41.50"
SKELETON = b'{"vendor_name":null,"invoice_number":null,"total":null,"line_items":[]}'


def first_draft(drafter: Drafter, out_bytes: bytes, in_string: bool) -> tuple[bytes | None, bool]:
    """The likeliest draft, as the decoder tries it first (None when there is none)."""
    return next(drafter.drafts(out_bytes, in_string=in_string), (None, False))


def test_a_value_is_drafted_from_the_document_up_to_the_column_gap():
    drafter = Drafter(LAYOUT, [])
    draft, into_strings = first_draft(drafter, b'{"line_items":[{"description":"Wi', in_string=True)
    assert draft == b"dget A"
    assert into_strings


def test_repeated_values_are_drafted_in_the_order_the_document_prints_them():
    """The second "Widget A" row is drafted from the third line, not the first: the search starts after the last copy."""
    drafter = Drafter(LAYOUT, [])
    first_draft(drafter, b'[{"description":"Widget B', in_string=True)  # the second line is where the reading is
    draft, _ = first_draft(drafter, b'[{"description":"Widget B"},{"description":"Wi', in_string=True)
    at = LAYOUT.find(b"dget A", LAYOUT.find(b"Widget B"))
    assert draft == b"dget A"
    assert drafter.cursor == at


def test_a_value_printed_only_before_the_cursor_is_still_found():
    drafter = Drafter(LAYOUT, [])
    first_draft(drafter, b'"Tot', in_string=True)  # the cursor is now past every line item
    draft, _ = first_draft(drafter, b'"Widget', in_string=True)
    assert draft == b" A"
    assert drafter.cursor == LAYOUT.find(b"Widget") + len(b"Widget")


def test_outside_a_string_keys_and_nulls_come_from_the_empty_answer_and_stop_at_a_string():
    drafter = Drafter(LAYOUT, [SKELETON])
    draft, into_strings = first_draft(drafter, b'{"vendor_name":null,"inv', in_string=False)
    assert draft.startswith(b'oice_number":null,"total":null')
    assert not into_strings


def test_an_earlier_answer_is_preferred_to_the_empty_one():
    earlier = b'{"vendor_name":"Acme","invoice_number":"7","total":"9.00","line_items":[]}'
    drafter = Drafter(b"", [earlier, SKELETON])
    draft, _ = first_draft(drafter, b'{"vendor_name":"Bolt","invoice_number":', in_string=False)
    assert draft.startswith(b'"7","total"')


def test_nothing_is_drafted_from_too_little_output():
    drafter = Drafter(LAYOUT, [SKELETON])
    assert first_draft(drafter, b'{"', in_string=False) == (None, False)
    assert first_draft(drafter, b'{"vendor_name":"', in_string=True) == (None, False)


def test_a_value_s_first_byte_drafts_from_where_a_printed_word_starts_with_it():
    """The "4" of "4.00" (second line), not the 4 that ends "12.4" nor one inside a word."""
    drafter = Drafter(b"Widget A   12.4   x4\n" + LAYOUT, [])
    assert first_draft(drafter, b'{"unit_price":"4', in_string=True) == (b".00", True)
    assert first_draft(drafter, b'{"sku":"d', in_string=True) == (None, False)  # only ever inside "Widget"


def test_a_word_of_a_value_that_is_no_copy_drafts_from_where_the_document_prints_it():
    """A summary repeats the order number the message prints: its first digit drafts the rest."""
    drafter = Drafter(b"Hi, I want to cancel purchase 113542617735902? Thanks", [])
    assert first_draft(drafter, b'"summary":"Customer wants to cancel order 1', in_string=True) == (b"13542617735902? Thanks", True)
    assert first_draft(drafter, b'"summary":"Customer wants to cancel order ', in_string=True) == (None, False)


def test_a_field_whose_label_is_not_printed_is_drafted_null_whatever_the_answers_wrote():
    """Every answer filled vendor_tax_id, but this document prints no tax-id label: its null comes first."""
    answers = [b'{"vendor_name":"A","vendor_tax_id":"DE123456789","total":"1.00"}', b'{"vendor_name":null,"vendor_tax_id":null,"total":null}']
    for written in (b'{"vendor_name":"Bolt","vendor_tax_id', b'{"vendor_name":"Bolt","vendor_tax_id"', b'{"vendor_name":"Bolt","vendor_tax_id":'):
        assert first_draft(Drafter(b"", answers, unprinted=["vendor_tax_id"]), written, in_string=False)[0].endswith(b'null,"total":null}')
        assert b"DE123456789" in first_draft(Drafter(b"", answers), written, in_string=False)[0]  # the answers' first: a value


def test_a_run_drafted_from_the_answers_says_null_for_a_field_whose_label_is_not_printed():
    """The answers filled the e-mail after the name; the message prints no address, so the run drafts its null."""
    answers = [b'{"customer_name":null,"customer_email":"a@b.de","order_id":null}', b'{"customer_name":null,"customer_email":null,"order_id":null}']
    draft, _ = first_draft(Drafter(b"", answers, unprinted=["customer_email"]), b'{"customer_name', in_string=False)
    assert draft == b'":null,"customer_email":null,"order_id":null}'


def test_continuation_takes_the_longest_tail_and_earlier_texts_first():
    texts = [b"xx total: 12 yy", b"the total: 99 zz"]
    assert next(continuations(b"grand total: ", texts)) == (0, b"12 yy")
    assert next(continuations(b"abc", texts), None) is None  # shorter than the least tail looked up
    assert next(continuations(b"nothing like it", texts), None) is None


def test_every_place_a_tail_is_printed_is_a_candidate_longest_first():
    """The longest match can be another key's ("amount" in "amount_due"): the later places follow it."""
    earlier = b'{"total":"4.11","amount_due":null,"line_items":[{"unit_price":"4.11","amount":"$4.11"}]}'
    found = list(islice(continuations(b'"unit_price":"$4.11","amount', [earlier]), 3))
    assert found[0] == (0, b'_due":null,"line_items":[{"unit_price":"4.11","amount":"$4.11"}]}')
    assert (0, b'":"$4.11"}]}') in found


def test_after_a_key_most_earlier_answers_decide_between_null_and_a_value():
    """The newest answer filled vendor_tax_id, two older ones and the empty answer did not: null is drafted."""
    newest = b'{"vendor_name":"A","vendor_tax_id":"DE123456789","total":"1.00"}'
    older = [b'{"vendor_name":"B","vendor_tax_id":null,"total":"2.00"}', b'{"vendor_name":"C","vendor_tax_id":null,"total":"3.00"}']
    skeleton = b'{"vendor_name":null,"vendor_tax_id":null,"total":null}'
    drafter = Drafter(b"", [newest, *older, skeleton])
    draft, into_strings = first_draft(drafter, b'{"vendor_name":"Bolt","vendor_tax_id', in_string=False)
    assert draft.startswith(b'":null,"total":"2.00"') and not into_strings
    assert next(continuations(b'{"vendor_name":"Bolt","vendor_tax_id', [newest, *older]))[0] == 0  # without the vote: the newest
