"""The tokenizer's vocabulary as raw bytes, for outlines-core and for copy speculation.

Byte-level BPE stores tokens as printable stand-ins for bytes (GPT-2's
``bytes_to_unicode``); outlines-core needs the real bytes. Special tokens
(``<|im_start|>``, ``<|im_end|>``, ...) are left out: the schema never allows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, (chr(c) for c in chars)))


_UNICODE_TO_BYTE = {u: b for b, u in _bytes_to_unicode().items()}


def symbol_to_bytes(symbol: str) -> bytes:
    return bytes(_UNICODE_TO_BYTE[ch] for ch in symbol)


def escaped_at(data: bytes | bytearray, index: int) -> bool:
    """Whether the byte at *index* follows an odd run of backslashes (is escaped)."""
    slashes = 0
    while index - slashes > 0 and data[index - slashes - 1] == 0x5C:
        slashes += 1
    return slashes % 2 == 1


@dataclass
class TokenVocabulary:
    """Token ids ↔ raw bytes for one tokenizer file."""

    tokenizer: Tokenizer
    token_bytes: list[bytes | None]  # None for special tokens
    eos_id: int
    fingerprint: str

    @classmethod
    def from_file(cls, path: Path, eos_token: str = "<|im_end|>") -> "TokenVocabulary":
        import hashlib

        raw = Path(path).read_bytes()
        tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
        spec = json.loads(raw)
        special = {t["id"] for t in spec.get("added_tokens", []) if t.get("special")}
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        table: list[bytes | None] = [None] * size
        for symbol, idx in tokenizer.get_vocab(with_added_tokens=True).items():
            if idx in special:
                continue
            try:
                table[idx] = symbol_to_bytes(symbol)
            except KeyError:  # an added, non-byte-level token
                table[idx] = symbol.encode("utf-8")
        eos_id = tokenizer.token_to_id(eos_token)
        return cls(tokenizer, table, eos_id, hashlib.sha256(raw).hexdigest()[:16])

    def __len__(self) -> int:
        return len(self.token_bytes)

    @cached_property
    def ids_by_bytes(self) -> dict[bytes, int]:
        """First (lowest) id for each byte string: the one longest-match tokenization uses."""
        out: dict[bytes, int] = {}
        for idx, b in enumerate(self.token_bytes):
            if b and b not in out:
                out[b] = idx
        return out

    @cached_property
    def closers_by_prefix(self) -> dict[bytes, list[int]]:
        """Tokens that close a JSON string, by what they write before its quote (b'",' under b'', b'."' under b'.')."""
        found: dict[bytes, list[int]] = {}
        for t, piece in enumerate(self.token_bytes):
            quote = (piece or b"").find(b'"')
            if quote >= 0 and not escaped_at(piece, quote):
                found.setdefault(piece[:quote], []).append(t)
        return found

    @cached_property
    def first_bytes(self) -> np.ndarray:
        """Each token's first byte (-1 for an empty one), to cut a mask down by what comes next."""
        return np.array([b[0] if b else -1 for b in self.token_bytes], dtype=np.int16)

    @cached_property
    def max_token_bytes(self) -> int:
        return max(len(b) for b in self.token_bytes if b)

    def outlines_vocabulary(self):
        from outlines_core import Vocabulary

        mapping: dict[bytes, list[int]] = {}
        for idx, b in enumerate(self.token_bytes):
            if b:
                mapping.setdefault(b, []).append(idx)
        return Vocabulary(self.eos_id, mapping)

    def spell(self, data: bytes, state: int, next_state, natural: bool,
              max_tokens: int | None = None) -> tuple[list[int], int, int]:
        """Tokens for the longest prefix of *data* the schema allows from *state*: (tokens, state, bytes used).

        *next_state(state, token)* is the schema's transition (None: not
        allowed). ``natural`` spells the text as the tokenizer does, which is
        how the document in the prompt is spelled; otherwise each step takes
        the longest allowed token, as jump-forward does. Stops where the
        schema refuses, where a natural token does not line up with the bytes,
        or at *max_tokens*.
        """
        tokens: list[int] = []
        pos, limit = 0, len(data) if max_tokens is None else max_tokens
        if natural:
            for tok in self.encode(data.decode("utf-8", errors="ignore")):
                piece = self.token_bytes[tok] or b""
                nxt = next_state(state, tok) if len(tokens) < limit else None
                if nxt is None or data[pos : pos + len(piece)] != piece:
                    break
                tokens.append(tok)
                state, pos = nxt, pos + len(piece)
            return tokens, state, pos
        while pos < len(data) and len(tokens) < limit:
            for size in range(min(self.max_token_bytes, len(data) - pos), 0, -1):
                tok = self.ids_by_bytes.get(data[pos : pos + size])
                nxt = None if tok is None else next_state(state, tok)
                if nxt is not None:
                    tokens.append(tok)
                    state, pos = nxt, pos + size
                    break
            else:
                break
        return tokens, state, pos

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode_bytes(self, ids: list[int]) -> bytes:
        return b"".join(self.token_bytes[i] or b"" for i in ids)
