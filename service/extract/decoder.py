"""The constrained decode loop: onnxruntime + outlines-core, no torch.

Five things make it fast without changing what it writes (in exact arithmetic):

* **Jump-forward.** Where the schema leaves one way to go (keys, punctuation),
  the longest allowed token is taken without asking the model; those tokens
  enter the KV cache with the next model call.
* **Speculation.** Extraction mostly copies: a draft of the next bytes
  (:mod:`service.extract.drafting`: the document while a value is copied,
  the model's answers to fixed other documents and the empty answer between
  values) is spelled in tokens
  and one forward pass verifies them all; greedy acceptance keeps what
  step-by-step decoding would have chosen, up to the kernels' rounding (with
  int8 weights a one-token pass and a nine-token pass round differently, and
  a near-tie can flip: ``python -m benchmarks.speculation``).
* **Cached masks.** The allowed tokens of each index state are computed once.
* **A chunked prefill.** The prompt is fed in chunks of :data:`PREFILL_CHUNK`
  tokens: the fused attention was 60% of a 650-token prefill's kernel time,
  and chunks of 192 take 0.8 of one call's time on two Xeon cores
  (436 against 539 ms); each chunk's activations also get their own int8 scale.
* **A cached prompt head.** The prompt before the document (system turn, user
  header) is the same for every document of a type: its KV cache is computed
  once, a token a call, and each document's prefill starts after it.

Values the engine names in ``copy_shapes`` (dates, IBANs) are also held to what
the document prints in their shape while they are written (:mod:`service.extract.copying`);
where that hold (or closing mode, below) leaves a single token (the rest of the
one printed date that begins so), it is taken without a model call, like a forced key.

Runaway output is bounded on purpose, never cut silently: a string value
longer than ``value_limit_bytes`` is closed, and when the token budget runs
low the decoder switches to closing mode (close strings and arrays, prefer
null) so the JSON always completes. Tokens chosen that way are flagged in
:attr:`DecodeResult.cut`; the engine reports the fields they belong to.

Greedy decoding only: extraction wants the most likely reading, and greedy
makes jump-forward and speculation output-preserving in exact arithmetic.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np

from service.extract.copying import CopyConstraint, PrintedShape
from service.extract.drafting import Drafter
from service.extract.session import KVCache, ModelSession

FORCED_SCAN_LIMIT = 128  # a state allowing more tokens than this cannot be forced
STRING_STATE_SIZE = 1000  # a state allowing this many tokens is inside a free string
_CLOSING = re.compile(rb'"?[\]}]*')
CLOSING_RESERVE_PER_FIELD = 10  # tokens kept back per top-level field to finish the JSON
PREFILL_CHUNK = 192  # prompt tokens a prefill call feeds: 163 to 217 measured alike, 64 and 649 slower


class StateTable:
    """Per-state facts from an outlines-core Index, computed once and kept."""

    def __init__(self, index, vocab):
        self.index = index
        self.vocab = vocab
        self._allowed: dict[int, np.ndarray] = {}
        self._forced: dict[int, int | None] = {}
        self._closers: dict[int, np.ndarray] = {}
        self._usable = np.array([b is not None and len(b) > 0 for b in vocab.token_bytes], dtype=bool)

    def allowed(self, state: int) -> np.ndarray:
        ids = self._allowed.get(state)
        if ids is None:
            ids = np.asarray(self.index.get_allowed_tokens(state) or [], dtype=np.int64)
            ids = ids[ids < len(self._usable)]
            ids = ids[self._usable[ids]]
            self._allowed[state] = ids
        return ids

    def forced(self, state: int) -> int | None:
        """The longest allowed token, when the schema leaves no other way to write its bytes.

        Every allowed token must be a prefix of it, and every shorter one must
        lead only on to the rest of it: after ``{"name`` the tokens ``":"``
        and ``":`` are both allowed, but ``":`` goes on to ``null``, so
        nothing there is forced and the model chooses between a string and
        null. (Taking the longest token there made null unreachable.)
        """
        if state in self._forced:
            return self._forced[state]
        ids = self.allowed(state)
        choice = None
        if 0 < len(ids) <= FORCED_SCAN_LIMIT:
            pieces = [(self.vocab.token_bytes[t], int(t)) for t in ids]
            longest, tok = max(pieces, key=lambda p: (len(p[0]), -p[1]))
            if self._only_continues(state, longest):
                choice = tok
        self._forced[state] = choice
        return choice

    def _only_continues(self, state: int, text: bytes, seen: dict | None = None) -> bool:
        """Whether every way on from *state* begins by writing *text* (or a prefix of it, then the rest).

        Every usable token writes at least one byte, so *text* shrinks on each
        step and the walk ends; *seen* keeps it linear in the ways to spell
        *text* (after ``{"`` the tokens ``c``, ``cu`` … ``customer`` all lead
        on to ``customer_name``, so ``customer`` is forced).
        """
        seen = {} if seen is None else seen
        if (state, text) in seen:
            return seen[(state, text)]
        ids = self.allowed(state)
        answer = 0 < len(ids) <= FORCED_SCAN_LIMIT
        for t in ids if answer else ():
            piece = self.vocab.token_bytes[t]
            if piece.startswith(text):
                continue
            after = self.next_state(state, int(t)) if text.startswith(piece) else None
            if after is None or not self._only_continues(after, text[len(piece):], seen):
                answer = False
                break
        seen[(state, text)] = answer
        return answer

    def closers(self, state: int) -> np.ndarray:
        """The shortest way out of a value: close the string, close the array, or say null."""
        if state in self._closers:
            return self._closers[state]
        ids = self.allowed(state)
        tb = self.vocab.token_bytes
        # Only tokens that end something: a closing quote followed by nothing
        # but closing brackets ("\"", "\"}", "\"}]"), a bare "]", or null. A
        # token like "\"},{\"" also contains a quote but opens the next row.
        # Inside a string a bare "]}]}" is only more text, so there the way
        # out must start with the closing quote.
        in_string = len(ids) >= STRING_STATE_SIZE
        picked = [t for t in ids if _CLOSING.fullmatch(tb[t]) and (not in_string or tb[t][:1] == b'"')
                  or (not in_string and tb[t][:1] == b"n")]
        out = np.asarray(picked, dtype=np.int64) if picked else ids
        self._closers[state] = out
        return out

    def next_state(self, state: int, token: int) -> int | None:
        return self.index.get_next_state(state, token)

    def is_final(self, state: int) -> bool:
        return self.index.is_final_state(state)


@dataclass
class DecodeResult:
    tokens: list[int]
    probs: list[float]  # probability of each output token under the constrained distribution; 1.0 when forced
    forced: list[bool]
    cut: list[bool]  # chosen to close a value early (value limit or token budget)
    complete: bool  # the schema's final state was reached
    model_calls: int = 0
    prompt_tokens: int = 0
    head_tokens: int = 0  # of the prompt's, taken from the cached prompt head rather than fed
    timings_ms: dict[str, float] = field(default_factory=dict)
    proposed: int = 0
    accepted: int = 0


def _masked_choice(row: np.ndarray, allowed: np.ndarray) -> tuple[int, float]:
    scores = row[allowed]
    best = int(np.argmax(scores))
    top = scores[best]
    prob = 1.0 / float(np.sum(np.exp(scores - top)))
    return int(allowed[best]), prob


class Decoder:
    def __init__(self, session: ModelSession, table: StateTable, speculate_tokens: int = 16, value_limit_bytes: int = 256, top_level_fields: int = 16, copy_shapes: dict[str, PrintedShape] | None = None, cues: dict[str, re.Pattern] | None = None, skeleton: bytes = b"", answers: list[bytes] = (), prompt_head: list[int] = (), prefill_chunk: int = PREFILL_CHUNK):
        self.session = session
        self.table = table
        self.skeleton = skeleton  # the answer with every field empty: where nulls and keys are drafted from
        # Answers to other documents, fixed with the model (``docket-model.json``): drafts of the
        # keys, nulls and phrasing answers repeat. Never the answers this decoder gave: the int8
        # kernels round a wider verifying pass differently, so drafts that depend on what was
        # decoded before would make a document's answer depend on it too (README, Speed).
        self.answers = list(answers)
        self.copy_shapes = dict(copy_shapes or {})  # key → shape of the values held to the document's text
        self.cues = dict(cues or {})  # key → what a document prints where it has the field
        self.speculate_tokens = speculate_tokens
        self.value_limit_bytes = value_limit_bytes
        self.closing_reserve = CLOSING_RESERVE_PER_FIELD * top_level_fields
        self.prompt_head = list(prompt_head)  # token ids every prompt of this type begins with
        self.prefill_chunk = prefill_chunk
        self._head_cache: KVCache | None = None

    def _start(self, prompt_ids: list[int], capacity: int) -> tuple[KVCache, list[int]]:
        """A KV cache to decode on and the prompt tokens still to feed: after the cached head when the prompt begins with it."""
        head = self.prompt_head
        if not head or prompt_ids[: len(head)] != head:
            return self.session.empty_cache(capacity), list(prompt_ids)
        if self._head_cache is None:
            self._head_cache = self._prefill_head()
        return self.session.copied_cache(self._head_cache, capacity), list(prompt_ids[len(head):])

    def _prefill_head(self) -> KVCache:
        """The head's KV cache, a token a call. The first token's activations run to thousands
        of times the others' (an attention sink); fed alone, none of them shares its scale when a
        graph quantizes activations per tensor. Computed once, so the calls cost nothing per document."""
        cache = self.session.empty_cache(len(self.prompt_head))
        for tok in self.prompt_head:
            _, cache = self.session.forward([tok], cache, keep=1)
        return cache

    def _must_close(self, out_bytes: bytearray, produced: int, max_new_tokens: int) -> bool:
        if produced >= max_new_tokens - self.closing_reserve:
            return True
        quote = out_bytes.rfind(b'"')
        return quote >= 0 and len(out_bytes) - quote - 1 > self.value_limit_bytes

    def _propose(self, out_bytes: bytearray, state: int, drafter: Drafter) -> list[int]:
        """Tokens that would likely come next (:mod:`service.extract.drafting`): the first draft the schema can spell.

        Wrong ones cost a wider pass, never the output (in exact arithmetic; int8 kernels round a
        wider pass differently, so a near-tie can flip: README, Speed).
        """
        if self.speculate_tokens <= 0:
            return []
        in_string = self._in_string(state)
        for draft, into_strings in drafter.drafts(bytes(out_bytes), in_string=in_string):
            tokens, after, whole = self._spell(draft, state, into_strings)
            if in_string and whole and into_strings:  # a value drafted to its end (perhaps already there)
                tokens += self._after_value(out_bytes + draft, after, drafter, self.speculate_tokens - len(tokens))
            if tokens:
                return tokens
        return []

    def _after_value(self, out_bytes: bytes, state: int, drafter: Drafter, room: int) -> list[int]:
        """What likely follows a value drafted to its end, verified with it so that the call that
        closes one value also opens the next: the closing quote and the keys the schema forces
        after it, spelled as jump-forward spells them (``","`` is one token), then the answers'
        draft for the choice there (a value's opening quote, a null)."""
        table, vocab = self.table, self.table.vocab
        quote = vocab.ids_by_bytes.get(b'"')
        after = table.next_state(state, quote) if quote is not None else None
        if after is None:
            return []
        structure = b'"'
        while (tok := table.forced(after)) is not None:
            structure += vocab.token_bytes[tok] or b""
            after = table.next_state(after, tok)
        tokens, state, used = vocab.spell(structure, state, table.next_state, natural=False, max_tokens=room)
        if used < len(structure) or len(tokens) >= room:
            return tokens
        choice = next(drafter.drafts(out_bytes + structure, in_string=False), (b"", False))[0]
        return tokens + self._spell(choice, state, into_strings=False, limit=room - len(tokens))[0]

    def _in_string(self, state: int) -> bool:
        return len(self.table.allowed(state)) >= STRING_STATE_SIZE

    def _spell(self, draft: bytes, state: int, into_strings: bool = True, limit: int | None = None) -> tuple[list[int], int, bool]:
        """*draft* as the tokens decoding would take: forced tokens where the schema forces, else the
        tokenizer's spelling; with the state they lead to and whether they spell all of it.

        Without *into_strings* the tokens stop where a string value opens.
        """
        table, vocab = self.table, self.table.vocab
        limit = self.speculate_tokens if limit is None else limit
        tokens: list[int] = []
        pos = 0
        was_in_string = self._in_string(state)
        while pos < len(draft) and len(tokens) < limit:
            in_string = self._in_string(state)
            if in_string and not was_in_string and not into_strings:
                break
            was_in_string = in_string
            tok = table.forced(state)
            if tok is None:
                natural = vocab.encode(draft[pos:].decode("utf-8", errors="ignore"))
                if not natural:
                    break
                tok = natural[0]
            piece = vocab.token_bytes[tok] or b""
            after = table.next_state(state, tok) if draft.startswith(piece, pos) else None
            if after is None:
                break
            tokens.append(tok)
            state, pos = after, pos + len(piece)
        return tokens, state, pos == len(draft)

    def decode(self, prompt_ids: list[int], max_new_tokens: int, source: bytes = b"", speculate: bool = True, jump_forward: bool = True) -> DecodeResult:
        table, session = self.table, self.session
        t_start = time.perf_counter()
        mask_s = model_s = 0.0
        state = table.index.get_initial_state()
        cache, pending = self._start(prompt_ids, len(prompt_ids) + max_new_tokens)  # room for the longest answer: a grown buffer is copied
        head_tokens = cache.length
        prefill_calls = 1  # the chunks below, then the first call that reads logits
        tokens: list[int] = []
        probs: list[float] = []
        forced_flags: list[bool] = []
        cut_flags: list[bool] = []
        out_bytes = bytearray()
        calls = proposed = accepted = 0
        prefill_ms = 0.0
        copy = CopyConstraint(self.copy_shapes, source, table.vocab) if self.copy_shapes and source else None
        text = source.decode("utf-8", errors="replace")
        drafter = Drafter(source, [*self.answers, self.skeleton], [key for key, cue in self.cues.items() if not cue.search(text)])

        def run_model(ids: list[int], kv, keep: int = 1):
            nonlocal model_s, prefill_ms, calls
            t0 = time.perf_counter()
            out = session.forward(ids, kv, keep)
            elapsed = time.perf_counter() - t0
            model_s += elapsed
            if calls < prefill_calls:
                prefill_ms += elapsed * 1000
            calls += 1
            return out

        while len(pending) > self.prefill_chunk:
            prefill_calls += 1
            _, cache = run_model(pending[: self.prefill_chunk], cache)
            pending = pending[self.prefill_chunk:]

        def emit(tok: int, prob: float, was_forced: bool, was_cut: bool = False) -> None:
            tokens.append(tok)
            probs.append(prob)
            forced_flags.append(was_forced)
            cut_flags.append(was_cut)
            out_bytes.extend(table.vocab.token_bytes[tok] or b"")

        def choices(state: int, closing: bool) -> np.ndarray:
            """The tokens the schema allows (closers only when *closing*), held to the document where a value must be copied."""
            allowed = table.closers(state) if closing else table.allowed(state)
            if copy is not None:
                held = copy.restrict(allowed, out_bytes)
                if held is None and closing:  # no closer ends on a printed value: finish one instead
                    held = copy.restrict(table.allowed(state), out_bytes)
                allowed = allowed if held is None else held
            return allowed

        while len(tokens) < max_new_tokens and not table.is_final(state):
            t0 = time.perf_counter()
            tok = table.forced(state)
            mask_s += time.perf_counter() - t0
            if tok is not None:
                if not jump_forward:  # the step-by-step reference: one model call per token
                    _, cache = run_model(pending, cache)
                    pending = []
                emit(tok, 1.0, True)
                pending.append(tok)
                state = table.next_state(state, tok)
                continue
            closing = self._must_close(out_bytes, len(tokens), max_new_tokens)
            t0 = time.perf_counter()
            first_choices = choices(state, closing)
            mask_s += time.perf_counter() - t0
            if jump_forward and len(first_choices) == 1:
                # Where the document (the rest of a printed date, of a word) or
                # closing mode leaves one way to go on, the model would choose
                # it with probability 1: taken like a forced key, fed with the next call.
                tok = int(first_choices[0])
                emit(tok, 1.0, False, closing)
                pending.append(tok)
                state = table.next_state(state, tok)
                continue
            proposal = self._propose(out_bytes, state, drafter) if speculate and not closing else []
            proposal = proposal[: max(0, max_new_tokens - len(tokens) - 1)]
            logits, cache = run_model(pending + proposal, cache, keep=len(proposal) + 1)
            proposed += len(proposal)
            base = 0  # row j predicts the token after pending + proposal[:j]
            fed_before = cache.length - len(pending) - len(proposal)
            taken = 0
            for j in range(len(proposal) + 1):
                t0 = time.perf_counter()
                tok = table.forced(state) if j else None  # a draft runs on through keys and punctuation
                if tok is not None:
                    mask_s += time.perf_counter() - t0
                    emit(tok, 1.0, True)
                else:
                    closing = closing or self._must_close(out_bytes, len(tokens), max_new_tokens)
                    allowed = first_choices if j == 0 else choices(state, closing)
                    tok, prob = _masked_choice(logits[base + j], allowed)
                    mask_s += time.perf_counter() - t0
                    emit(tok, prob, False, closing)
                state = table.next_state(state, tok)
                if j < len(proposal) and tok == proposal[j] and not table.is_final(state) and len(tokens) < max_new_tokens:
                    taken += 1
                    continue
                break
            accepted += taken
            cache = cache.truncate(fed_before + len(pending) + taken)
            pending = [tok]
        total_ms = (time.perf_counter() - t_start) * 1000
        return DecodeResult(
            tokens=tokens,
            probs=probs,
            forced=forced_flags,
            cut=cut_flags,
            complete=table.is_final(state),
            model_calls=calls,
            prompt_tokens=len(prompt_ids),
            head_tokens=head_tokens,
            timings_ms={
                "prefill": prefill_ms,
                "decode": model_s * 1000 - prefill_ms,
                "mask": mask_s * 1000,
                "total": total_ms,
            },
            proposed=proposed,
            accepted=accepted,
        )
