"""Training examples: synthetic documents plus the training split of ../shared/data.

An example is (doc_type, document text, target object, labelled field names).
The target is exactly what the model should write under the decode schema;
fields a source does not label are left out of the loss (see
``service.extract.prompt.render_target``); a field is taught as null only
where the source shows it is absent.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from service.splits import split_of

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class TrainExample:
    id: str
    doc_type: str
    text: str
    target: dict[str, Any]
    labelled: set[str] | None = None  # None: every field is labelled


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# Fields a receipt does not have when nothing printed on it could introduce
# them. SROIE labels four fields; left unlabelled, the others were never
# taught at all, and the model filled them from neighbouring lines (a buyer
# "DELIVERY CHG", a due date "129.30"), which then led its later fields astray.
ABSENT_FROM_RECEIPT_UNLESS = {
    "buyer_name": re.compile(r"customer|bill\s*to|sold\s*to|attn|name|cust|member|buyer|client", re.I),
    "due_date": re.compile(r"due", re.I),
    "purchase_order": re.compile(r"\bp\.?\s?o\b|purchase|order", re.I),
    "amount_due": re.compile(r"due|balance|outstanding", re.I),
    "iban": re.compile(r"iban|\b[a-z]{2}\d{2}\s?[a-z0-9]{4}", re.I),
}


def sroie_examples(split: str = "train", root: Path = SHARED_DATA) -> Iterator[TrainExample]:
    """Receipts: vendor name, address, date as printed and total are labelled,
    and the fields of :data:`ABSENT_FROM_RECEIPT_UNLESS` as null where the text
    has no word that could introduce them."""
    folder = root / "sroie"
    for row in _read_jsonl(folder / "normalized.jsonl"):
        if split_of("sroie", row["id"]) != split:
            continue
        text = (folder / row["input"]).read_text(encoding="utf-8")
        target = {k: row.get(k) for k in ("vendor_name", "vendor_address", "invoice_date", "total")}
        target["currency"] = None
        labelled = {k for k, v in target.items() if v is not None}
        for name, cue in ABSENT_FROM_RECEIPT_UNLESS.items():
            if not cue.search(text):
                target[name] = None
                labelled.add(name)
        yield TrainExample(f"sroie-{row['id']}", "invoice", text, target, labelled)


def _entity_text(row: dict, name: str) -> str | None:
    """The id as it is written in the message (the labels sometimes drop leading zeros)."""
    value = row.get(name)
    entity = row.get("entity") or {}
    if value and entity.get("start") is not None:
        span = row["text"][entity["start"] : entity["end"]]
        if span.lstrip("#0") == str(value).lstrip("#0"):
            return span
    return value


# The ticket fields Bitext tags when a message has them. The set fills one
# placeholder per message and tags it, and an untagged message carries no
# other id, name or address (checked across the whole set), so an untagged
# field is known to be absent: taught as null. Left out of the loss, the
# model was never taught to say null on a short message and invented a
# customer, an e-mail and an invoice id for "cancel purchase 7322013".
BITEXT_TAGGED_FIELDS = ("order_id", "invoice_id", "customer_name", "customer_email")


def bitext_examples(split: str = "train", root: Path = SHARED_DATA) -> Iterator[TrainExample]:
    """Short customer messages: category and language (Bitext is English
    throughout), and the tagged fields of :data:`BITEXT_TAGGED_FIELDS`, null
    where the message has none."""
    for row in _read_jsonl(root / "bitext" / "normalized.jsonl"):
        if split_of("bitext", row["id"]) != split:
            continue
        target = {"category": row["category"].lower(), "language": "en"}
        target |= {name: _entity_text(row, name) for name in BITEXT_TAGGED_FIELDS}
        labelled = {"category", "language", *BITEXT_TAGGED_FIELDS}
        yield TrainExample(row["id"], "ticket", row["text"], target, labelled)


def has_tagged_entity(example: TrainExample) -> bool:
    return any(example.target.get(name) for name in BITEXT_TAGGED_FIELDS)


def synthetic_examples(path: Path) -> Iterator[TrainExample]:
    """Generated documents (training.synth): every field labelled by construction."""
    for row in _read_jsonl(path):
        yield TrainExample(row["id"], row["doc_type"], row["text"], row["target"], None)


def sample(items: list, n: int, seed: int) -> list:
    items = list(items)
    random.Random(seed).shuffle(items)
    return items[:n]
