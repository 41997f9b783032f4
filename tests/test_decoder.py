"""Decoder invariants on the tiny real model (random weights, real tokenizer, real ONNX).

Whatever the model says, the output parses and validates against the
schema; jump-forward and copy speculation change how often the model is
called, never what is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from config.settings import Settings
from service.doctypes import load_document_types
from service.extract.decoder import Decoder, StateTable
from service.extract.engine import copy_shapes, load_index
from service.extract.prompt import build_prompt, compact_text, prompt_head
from service.extract.session import ModelSession
from service.extract.vocabulary import TokenVocabulary

DOC_TYPES = load_document_types(Settings().schema_dir)

TEXTS = [
    "Hello, my order #A-7781 never arrived and I want a refund now!\nRegards, Maria Lopez maria@example.com",
    "Guten Tag, Rechnung RE-2024-0042 ist doppelt abgebucht worden. Bitte sofort prüfen. Jan Becker",
    "INVOICE 10023\nACME Tools Ltd, 12 High Street, Leeds\nDate: 14/03/2024\nWidget  2  x 12.50  25.00\nTotal EUR 25.00",
]


@pytest.fixture(scope="module")
def parts(tiny_model_dir: Path, tmp_path_factory):
    vocab = TokenVocabulary.from_file(tiny_model_dir / "tokenizer.json")
    session = ModelSession(tiny_model_dir / "model.onnx")
    cache = tmp_path_factory.mktemp("index-cache")
    decoders = {
        name: Decoder(
            session, StateTable(load_index(dt, vocab, cache), vocab), top_level_fields=len(dt.fields), copy_shapes=copy_shapes(dt)
        )
        for name, dt in DOC_TYPES.items()
    }
    return vocab, decoders


def _decode(parts, doc_type: str, text: str, **kwargs):
    vocab, decoders = parts
    ids = vocab.encode(build_prompt(DOC_TYPES[doc_type], compact_text(text)))
    result = decoders[doc_type].decode(ids, 300, text.encode(), **kwargs)
    return result, vocab.decode_bytes(result.tokens).decode("utf-8")


@pytest.mark.parametrize("doc_type", sorted(DOC_TYPES))
@pytest.mark.parametrize("text", TEXTS)
def test_output_always_parses_and_validates(parts, doc_type, text):
    result, out = _decode(parts, doc_type, text)
    assert result.complete
    jsonschema.validate(json.loads(out), DOC_TYPES[doc_type].decode_schema)


@pytest.mark.parametrize("doc_type", sorted(DOC_TYPES))
@pytest.mark.parametrize("text", TEXTS)
def test_jump_forward_and_speculation_write_what_step_by_step_writes(parts, doc_type, text):
    reference, _ = _decode(parts, doc_type, text, jump_forward=False, speculate=False)
    fast, _ = _decode(parts, doc_type, text, jump_forward=True, speculate=True)
    assert fast.tokens == reference.tokens
    assert fast.model_calls < reference.model_calls


def test_a_date_is_one_the_document_prints(parts):
    """Random weights would write any date-shaped string; held to the document, it writes the printed one."""
    for text, printed in [(TEXTS[2], {"14/03/2024"}), ("Bill 77\nissued 3. März 2024, due 02-04-24 at 10:00\nTotal 5.00", {"3. März 2024", "02-04-24"})]:
        _, out = _decode(parts, "invoice", text)
        answer = json.loads(out)
        assert answer["invoice_date"] in printed, (answer["invoice_date"], text)
        assert answer["due_date"] is None or answer["due_date"] in printed


def test_the_rest_of_a_held_value_costs_no_model_call(parts):
    """The document prints one date: once the decoder is inside ``invoice_date``,
    every token of "14/03/2024" is the only one the hold allows. Those are
    taken without asking the model (fed with the next call); it is asked
    about none of the date's positions, and the answer is the printed date."""
    vocab, decoders = parts
    decoder = decoders["invoice"]
    ids = vocab.encode(build_prompt(DOC_TYPES["invoice"], compact_text(TEXTS[2])))
    asked = []  # output positions a model call chose a token for
    forward = decoder.session.forward

    def recording(token_ids, cache, keep=None):
        logits, grown = forward(token_ids, cache, keep)
        asked.append(grown.length - len(ids))
        return logits, grown

    decoder.session.forward = recording
    try:
        result = decoder.decode(ids, 300, TEXTS[2].encode(), speculate=False)
    finally:
        del decoder.session.forward
    out = vocab.decode_bytes(result.tokens)
    start = out.index(b'"invoice_date":"') + len(b'"invoice_date":"')
    end = out.index(b'"', start)
    assert out[start:end] == b"14/03/2024"
    offsets = np.cumsum([0] + [len(vocab.token_bytes[t]) for t in result.tokens])
    date_positions = {i for i in range(len(result.tokens)) if start <= offsets[i] < end}
    assert len(date_positions) >= 4  # digits are single tokens here
    assert not date_positions & set(asked)


def test_without_a_printed_date_the_schema_alone_decides(parts):
    result, out = _decode(parts, "invoice", "Widget 2 x 12.50\nTotal 25.00")
    assert result.complete
    jsonschema.validate(json.loads(out), DOC_TYPES["invoice"].decode_schema)


def test_speculation_accepts_copied_text_and_keeps_the_output(parts):
    """A document that repeats one phrase: copying it is what the tiny model's loop does."""
    vocab, decoders = parts
    text = " ny" * 200
    plain, _ = _decode(parts, "ticket", text, speculate=False)
    fast, _ = _decode(parts, "ticket", text, speculate=True)
    assert fast.tokens == plain.tokens
    assert fast.accepted > 0
    assert fast.model_calls < plain.model_calls


def test_token_cap_is_handled_on_purpose(parts):
    """A tight budget still yields valid JSON, with the cut tokens flagged."""
    vocab, decoders = parts
    ids = vocab.encode(build_prompt(DOC_TYPES["invoice"], TEXTS[2]))
    result = decoders["invoice"].decode(ids, 200, b"")
    out = vocab.decode_bytes(result.tokens).decode()
    assert result.complete and len(result.tokens) <= 200
    jsonschema.validate(json.loads(out), DOC_TYPES["invoice"].decode_schema)
    assert any(result.cut)


def test_closing_inside_a_string_ends_the_string(parts):
    """Closing brackets are plain text inside a string: closing mode must write the quote first.

    The default model, looping on line items at the token cap, once wrote
    ``]]]}]}…`` into a description until the cap, and the JSON never ended.
    """
    vocab, decoders = parts
    table = decoders["invoice"].table
    state = table.index.get_initial_state()
    for byte in b'{"vendor_name":"Acme':
        state = table.next_state(state, vocab.ids_by_bytes[bytes([byte])])
    closers = table.closers(state)
    assert len(closers) > 0
    assert all(vocab.token_bytes[t].startswith(b'"') for t in closers)
    assert vocab.ids_by_bytes[b"]"] not in set(closers.tolist())


@pytest.mark.parametrize("doc_type", sorted(DOC_TYPES))
def test_jump_forward_never_rules_out_a_valid_answer(parts, doc_type):
    """Where the decoder forces a token, every valid output has that token there:
    an answer of nulls (optional fields absent) and one of filled strings are
    both still writable after each forced step. (The longest token after a key
    once forced '":"' and made null unreachable.)"""
    from service.extract.prompt import render_target, tokenize_target

    vocab, decoders = parts
    table = decoders[doc_type].table
    dt = DOC_TYPES[doc_type]
    samples = {"currency": "EUR", "language": "en", "iban": "DE89 3704 0044 0532 0130 00"}  # a pattern has no neutral value
    codes = {f.name: samples[f.name] for f in dt.fields if f.kind == "code"}
    filled = {**codes, **{f.name: samples.get(f.name, "x") for f in dt.fields if f.kind == "string"}}
    for target in (codes, filled):
        text, _ = render_target(dt, target)
        state = table.index.get_initial_state()
        for tok in tokenize_target(text, vocab, table.index):
            forced = table.forced(state)
            assert forced is None or forced == tok, (doc_type, text, vocab.token_bytes[forced], vocab.token_bytes[tok])
            state = table.next_state(state, tok)


def test_a_key_the_schema_fixes_is_forced_whole(parts):
    """At the start of a ticket only ``{"customer_name`` can be written: every byte of it is forced.

    The forced-run check once gave up on a key with several spellings
    (``c``, ``cu`` … ``customer`` all lead on to ``customer_name``) and left
    it to the model, one call per token. What follows is the model's: the
    colon comes in one token with the value's opening (``":"`` or ``":null``),
    the way the training targets spell it.
    """
    vocab, decoders = parts
    table = decoders["ticket"].table
    state, written = table.index.get_initial_state(), b""
    while (tok := table.forced(state)) is not None:
        written += vocab.token_bytes[tok]
        state = table.next_state(state, tok)
    assert written == b'{"customer_name'


def test_answers_to_draft_from_change_the_calls_never_the_output(parts, tiny_model_dir: Path, tmp_path):
    """A decoder given the model's answers to other documents drafts from them: here the same document's own
    answer, which makes every draft right, so it takes fewer calls and writes the same tokens."""
    vocab, _ = parts
    dt = DOC_TYPES["ticket"]
    session, table = ModelSession(tiny_model_dir / "model.onnx"), StateTable(load_index(dt, vocab, tmp_path), vocab)
    ids = vocab.encode(build_prompt(dt, compact_text(TEXTS[0])))
    first = Decoder(session, table, top_level_fields=len(dt.fields)).decode(ids, 300, TEXTS[0].encode())
    drafted = Decoder(session, table, top_level_fields=len(dt.fields), answers=[vocab.decode_bytes(first.tokens)])
    again = drafted.decode(ids, 300, TEXTS[0].encode())
    assert again.tokens == first.tokens
    assert again.model_calls < first.model_calls


def test_a_document_decodes_alike_whatever_was_decoded_before(parts):
    """No answer is remembered from one document to the next: a retry, or a document after others, gets the same calls and tokens."""
    vocab, decoders = parts
    decoder = decoders["invoice"]
    prompts = [(vocab.encode(build_prompt(DOC_TYPES["invoice"], compact_text(text))), text.encode()) for text in TEXTS[:2]]
    alone = decoder.decode(prompts[0][0], 300, prompts[0][1])
    decoder.decode(prompts[1][0], 300, prompts[1][1])
    after_another = decoder.decode(prompts[0][0], 300, prompts[0][1])
    assert (after_another.tokens, after_another.model_calls) == (alone.tokens, alone.model_calls)


@pytest.mark.parametrize("doc_type", sorted(DOC_TYPES))
def test_a_cached_prompt_head_writes_what_a_whole_prefill_writes(parts, tiny_model_dir: Path, doc_type):
    """The head's KV cache, computed once a token a call, stands in for feeding it with every document."""
    vocab, decoders = parts
    plain = decoders[doc_type]
    head_ids = vocab.encode(prompt_head(DOC_TYPES[doc_type]))
    headed = Decoder(plain.session, plain.table, top_level_fields=len(DOC_TYPES[doc_type].fields),
                     copy_shapes=copy_shapes(DOC_TYPES[doc_type]), prompt_head=head_ids)
    for text in TEXTS:
        ids = vocab.encode(build_prompt(DOC_TYPES[doc_type], compact_text(text)))
        assert ids[: len(head_ids)] == head_ids  # the head tokenizes alike alone and before a document
        reference = plain.decode(ids, 300, text.encode())
        cached = headed.decode(ids, 300, text.encode())
        assert cached.tokens == reference.tokens
        assert (cached.head_tokens, reference.head_tokens) == (len(head_ids), 0)
        assert cached.prompt_tokens == reference.prompt_tokens == len(ids)
    other = vocab.encode("<|im_start|>user\nno system turn here<|im_end|>\n<|im_start|>assistant\n")
    assert headed.decode(other, 300, b"no system turn here").head_tokens == 0  # another prompt is fed whole


def test_a_chunked_prefill_writes_what_one_call_writes(parts):
    """A prompt fed in chunks (the last goes with the first call that reads logits) decodes alike."""
    vocab, decoders = parts
    decoder = decoders["invoice"]
    text = "\n".join(TEXTS * 3)
    ids = vocab.encode(build_prompt(DOC_TYPES["invoice"], compact_text(text)))
    chunk = decoder.prefill_chunk
    try:
        decoder.prefill_chunk = len(ids) + 1
        whole = decoder.decode(ids, 300, text.encode())
        decoder.prefill_chunk = 24
        chunked = decoder.decode(ids, 300, text.encode())
    finally:
        decoder.prefill_chunk = chunk
    assert len(ids) > 3 * 24
    assert chunked.tokens == whole.tokens
    assert chunked.model_calls == whole.model_calls + (len(ids) - 1) // 24

