"""Drafts for speculation: what the output is likely to write next, as bytes.

Greedy verification makes a wrong draft cost only a wider forward pass
(about 1.2 ms a token on two cores, against 8 to 10 ms a call), so drafts
are cheap guesses from text the output tends to repeat:

* **the document**, while a value is being copied: where what has been
  written of the value is printed, what follows it there, from the value's
  first byte on (that byte only where a printed word or number starts with
  it: right about half the time, which saves a call a number); in a value that is
  not a copy (a summary), the word being written, where the document prints it. Values are read in
  roughly the order the text prints them (line items above all), so the search
  starts where the last copied value was found. A draft stops at a line break
  or a column gap: a value rarely runs on across one, and the model's own
  closing quote comes free with the last verified row.
* **the empty answer** first at the key of a field whose label the document
  does not print (its ``x-docket-cues``: no e-mail address, no "Invoice no."):
  such a field is usually null, whatever most answers wrote there.
* **the model's answers to other documents of the type**, fixed when the
  model is built (synthetic documents: ``training.export.draft_answers``),
  then **the empty answer** (every key, every value null): the longest recent
  stretch of the output found there, and what follows it, up to the next
  string value. This drafts keys,
  punctuation and runs of absent fields, the labels an enum repeats, and,
  matched on the value's own text, phrasing a summary repeats.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from itertools import islice

DRAFT_BYTES = 96  # how much of a continuation is proposed from
LOOKUP_BYTES = 32  # the longest stretch of output looked up
LOOKUP_MIN_BYTES = 4  # shorter stretches match too much to be worth proposing from
MAX_DRAFTS = 3  # matches tried from one lookup before giving up on a draft
VOTE_BYTES = 3  # enough to tell a null (`":n`) from a string (`":"`) after a key
_VALUE_END = re.compile(rb"\n| {2,}|\t")  # where a copied value usually ends in layout text


def continuations(context: bytes, texts: list[bytes], by_vote: bool = False) -> Iterator[tuple[int, bytes]]:
    """Which of *texts* hold a tail of *context*, and what follows it there: the longest tail
    first (earlier texts first at equal length), each place once.

    *by_vote*: at equal length, what most places go on with comes first (by its
    first :data:`VOTE_BYTES`): after a key, ``":null`` where most earlier
    answers left the field empty, though the newest filled it.
    """
    seen = set()
    for n in range(min(len(context), LOOKUP_BYTES), LOOKUP_MIN_BYTES - 1, -1):
        tail = context[-n:]
        found = []
        for i, text in enumerate(texts):
            at = text.find(tail)
            while 0 <= at and at + n < len(text):
                if (i, at + n) not in seen:
                    seen.add((i, at + n))
                    found.append((i, text[at + n : at + n + DRAFT_BYTES]))
                at = text.find(tail, at + 1)
        if by_vote:
            votes = Counter(rest[:VOTE_BYTES] for _, rest in found)
            found.sort(key=lambda match: -votes[match[1][:VOTE_BYTES]])  # stable: earlier texts first among equals
        yield from found


def _starts_word(source: bytes, at: int) -> bool:
    before = source[at - 1 : at]
    return not (before.isalnum() or before in (b".", b","))


def _to_value_end(rest: bytes) -> bytes:
    end = _VALUE_END.search(rest)
    return rest[: end.start()] if end else rest


class Drafter:
    """Drafts for one decode: the document, and the outputs it may repeat (answers to other documents, the empty answer)."""

    def __init__(self, source: bytes, answers: list[bytes], unprinted: list[str] = ()):
        self.source = source
        self.answers = answers
        # Keys whose label the document does not print (``x-docket-cues``): their null is drafted first.
        self.unprinted = [json.dumps(key, ensure_ascii=False).encode("utf-8") for key in unprinted]
        self.cursor = 0  # just past the last value copied from the document

    def _printed_at(self, written: bytes) -> int:
        """Where the document prints *written*: from the cursor on, else anywhere; -1 if nowhere.

        A single byte is looked for only where a word or number starts: the
        "4" that begins "4.11" rather than the one inside "2014" or "12.4".
        """
        if not self.source or not written:
            return -1
        for start in (self.cursor, 0):
            at = self.source.find(written, start)
            while len(written) == 1 and at > 0 and not _starts_word(self.source, at):
                at = self.source.find(written, at + 1)
            if at >= 0:
                return at
        return -1

    def _null_run(self, key: bytes) -> bytes:
        """*key* with a null, and what follows that null in the answers."""
        null = key + b":null"
        return null + next(continuations(null, self.answers), (0, b""))[1]

    def _null_of_unprinted(self, out_bytes: bytes) -> bytes | None:
        """At the key of a field whose label is not printed: its null, and what follows that null in the answers."""
        for key in self.unprinted:
            for cut in range(len(key) - 1, len(key) + 2):  # the key up to its closing quote, with it, with the colon
                if out_bytes.endswith((key + b":")[:cut]):
                    return self._with_unprinted_null(self._null_run(key)[cut:])
        return None

    def _with_unprinted_null(self, draft: bytes) -> bytes:
        """*draft* up to the first field in it whose label is not printed, with that field's null from there on."""
        values = [(at, key) for key in self.unprinted if (at := draft.find(key + b':"')) >= 0]
        if not values:
            return draft
        at, key = min(values)
        return draft[:at] + self._null_run(key)

    def drafts(self, out_bytes: bytes, in_string: bool) -> Iterator[tuple[bytes, bool]]:
        """Likely continuations of *out_bytes*, the likeliest first, each with whether it may
        run on into the next string value.

        *in_string*: a string value is being written. Only the document
        drafts a value's text; another answer's value for the same key
        (a vendor, a date) is rarely this document's, so a draft from the
        answers stops where the next string value opens. The decoder takes
        the first the schema can spell: the longest stretch matched may
        belong to another key (``4.11","amount`` in ``"total":"4.11","amount_due"``
        of another answer, where a line item's ``"amount"`` is being written).
        """
        quote = out_bytes.rfind(b'"')
        written = out_bytes[quote + 1 :] if quote >= 0 else b""
        if not in_string:
            if null := self._null_of_unprinted(out_bytes):
                yield null, False
            for _, draft in islice(continuations(out_bytes[-LOOKUP_BYTES:], self.answers, by_vote=True), MAX_DRAFTS):
                yield self._with_unprinted_null(draft), False
            return
        at = self._printed_at(written)
        if at >= 0:
            self.cursor = at + len(written)
            # Empty where the printed value ends here: the value's end is the draft.
            yield _to_value_end(self.source[self.cursor : self.cursor + DRAFT_BYTES]), True
        elif (word := written[written.rfind(b" ") + 1 :]) and word != written:
            # A value that is not a copy (a summary, an address joined from lines) still
            # copies its words and numbers: the one being written, where the document prints it.
            at = self._printed_at(word)
            if at >= 0 and (draft := _to_value_end(self.source[at + len(word) : at + len(word) + DRAFT_BYTES])):
                yield draft, True
        # A value joined from several lines, or phrasing other answers
        # repeat (a summary): matched on the value's own text.
        if len(written) >= LOOKUP_MIN_BYTES:
            for text, draft in islice(continuations(written, [self.source, *self.answers]), MAX_DRAFTS):
                yield (_to_value_end(draft), True) if text == 0 else (draft, False)
