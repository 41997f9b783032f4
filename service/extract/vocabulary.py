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
    def max_token_bytes(self) -> int:
        return max(len(b) for b in self.token_bytes if b)

    def outlines_vocabulary(self):
        from outlines_core import Vocabulary

        mapping: dict[bytes, list[int]] = {}
        for idx, b in enumerate(self.token_bytes):
            if b:
                mapping.setdefault(b, []).append(idx)
        return Vocabulary(self.eos_id, mapping)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode_bytes(self, ids: list[int]) -> bytes:
        return b"".join(self.token_bytes[i] or b"" for i in ids)
