"""Prompt, input compaction and output format: one module for training and serving.

The model sees a compacted document (layout-mode whitespace runs cost tokens
and time) inside a short chat prompt, and writes compact JSON in the schema's
key order. Training renders its targets with :func:`render_target` and
tokenizes them with :func:`tokenize_target`: the structure by the same
longest-allowed-token rule the decoder's jump-forward uses, string values in
the tokens the document itself is written in, so the model is trained on the
token sequences it will be asked to continue and copy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from service.doctypes import DATE_PLACEHOLDER, DocumentType

COLUMN_GAP = re.compile(r"[ \t\u00a0]{2,}")  # a run of spaces in layout text: compacted to two, it still parts columns
_BLANK_RUN = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def compact_text(text: str) -> str:
    """Collapse layout whitespace: indentation dropped, column gaps to two spaces, one blank line at most."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\f", "\n"))
    lines = [COLUMN_GAP.sub("  ", line.strip()) for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def clean_value(value: str) -> str:
    """What a string value looks like in a target: one line, single spaces."""
    return " ".join(_CONTROL.sub(" ", value.replace("\n", " ")).split())


@dataclass
class FittedText:
    text: str
    omitted_pages: list[int] = field(default_factory=list)  # 1-based
    cut_page: int | None = None


def fit_to_budget(pages: list[str], count_tokens: Callable[[str], int], budget: int) -> FittedText:
    """Choose what the model reads when the document is longer than the context budget.

    Page one (parties, numbers, dates) and the last page (totals) matter most,
    then the rest in order. A page that does not fit whole is left out, except
    page one, which is cut at a line boundary. Nothing is ever cut silently:
    the caller gets the omitted and cut pages and reports them.
    """
    compacted = [compact_text(p) for p in pages]
    costs = [count_tokens(p) for p in compacted]
    if sum(costs) <= budget:
        return FittedText("\n\n".join(compacted))
    order = [0] + ([len(pages) - 1] if len(pages) > 1 else []) + list(range(1, len(pages) - 1))
    chosen, used, cut = set(), 0, None
    for i in order:
        if used + costs[i] <= budget:
            chosen.add(i)
            used += costs[i]
    if 0 not in chosen:  # page one alone is too long: keep its head
        lines = compacted[0].split("\n")
        while lines and count_tokens("\n".join(lines)) > budget:
            lines = lines[: max(1, int(len(lines) * 0.8))] if len(lines) > 1 else []
        compacted[0] = "\n".join(lines)
        chosen, cut = {0}, 1
    text = "\n\n".join(compacted[i] for i in sorted(chosen))
    omitted = [i + 1 for i in range(len(pages)) if i not in chosen]
    return FittedText(text, omitted, cut)


def prompt_head(doc_type: DocumentType) -> str:
    """The prompt before the document: the same for every document of a type, so its KV cache is computed once."""
    system = f"Extract the {doc_type.name} fields as JSON. {doc_type.description}".strip()
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"


def build_prompt(doc_type: DocumentType, document_text: str) -> str:
    """The chat prompt up to the point where the model starts writing JSON."""
    return f"{prompt_head(doc_type)}{document_text}<|im_end|>\n<|im_start|>assistant\n"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _placeholder(spec) -> Any:
    """A schema-valid stand-in for a value the source does not label (kept out of the loss)."""
    if spec.kind == "array":
        return []
    if spec.nullable:
        return None
    if spec.kind == "enum":
        return spec.enum[0]
    if spec.kind == "code":
        raise ValueError(f"{spec.name} must be labelled: no neutral value satisfies its pattern")
    if spec.kind == "date":
        return DATE_PLACEHOLDER  # "" is not a printed date
    return ""


def empty_answer(doc_type: DocumentType) -> str:
    """The output's shape with nothing found: every key in schema order, null or an empty list.

    The decoder drafts keys and nulls from it, so a run of absent fields is
    verified in one model call.
    """
    return _dump({spec.name: [] if spec.kind == "array" else None for spec in doc_type.fields})


def render_target(doc_type: DocumentType, target: dict[str, Any], labelled: set[str] | None = None) -> tuple[str, list[tuple[int, int]]]:
    """Compact JSON in schema order, and the character spans of unlabelled values.

    Unlabelled fields are written as null (or an empty list) so the JSON stays
    valid, and their spans are returned so training can leave them out of the
    loss: the model is not taught to say null where a value may exist.
    """
    parts, masked, pos = ["{"], [], 1
    for i, spec in enumerate(doc_type.fields):
        key = ("," if i else "") + _dump(spec.name) + ":"
        parts.append(key)
        pos += len(key)
        value = target.get(spec.name)
        if spec.kind == "array":
            rows = value or []
            value = [{k: (clean_value(v) if isinstance(v, str) else v) for k, v in row.items()} for row in rows]
        elif isinstance(value, str):
            value = clean_value(value)
        elif value is None:
            value = _placeholder(spec)
        text = _dump(value)
        if labelled is not None and spec.name not in labelled:
            masked.append((pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
    parts.append("}")
    return "".join(parts), masked


def string_value_spans(text: str) -> list[tuple[int, int]]:
    """Byte spans of the contents of the string *values* (not keys) in compact JSON *text*."""
    data = text.encode("utf-8")
    spans, i = [], 0
    while i < len(data):
        if data[i : i + 1] != b'"':
            i += 1
            continue
        start = j = i + 1
        while j < len(data) and data[j : j + 1] != b'"':
            j += 2 if data[j : j + 1] == b"\\" else 1
        if data[j + 1 : j + 2] != b":":
            spans.append((start, j))
        i = j + 1
    return spans


def tokenize_target(text: str, vocab, index) -> list[int]:
    """Token ids for *text*: string values as the tokenizer writes them, the rest by the longest allowed token.

    The structure (keys, quotes, punctuation) follows the longest-allowed-token
    rule, which is what the decoder's jump-forward produces where the schema
    forces the text. A string value's contents are tokenized the way the
    tokenizer tokenizes them in the document itself: the model copies values
    from the document, and a target spelled in other tokens (greedy longest
    match splits " Tecklenburg" as " Tec|kl|enburg", the document as
    " Te|ck|len|burg") teaches it that copying is wrong. Where such a token is
    not allowed (an escape, a pattern), the value falls back to longest match.
    """
    data = text.encode("utf-8")
    state, pos, out = index.get_initial_state(), 0, []

    def spell(until: int, natural: bool) -> None:
        nonlocal state, pos
        tokens, state, used = vocab.spell(data[pos:until], state, index.get_next_state, natural)
        out.extend(tokens)
        pos += used

    for start, end in [*string_value_spans(text), (len(data), len(data))]:
        spell(start, natural=False)
        if pos < start:
            raise ValueError(f"target is not allowed by the schema at byte {pos}: {data[pos:pos + 40]!r}")
        spell(end, natural=True)
        spell(end, natural=False)
        if pos < end:
            raise ValueError(f"target is not allowed by the schema at byte {pos}: {data[pos:pos + 40]!r}")
    if not index.is_final_state(state):
        raise ValueError("target ends before the schema is complete")
    return out
