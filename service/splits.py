"""The fixed train/eval split of the shared real-document datasets.

A document's split depends on nothing but its dataset and id, so it never
moves between runs and no model is ever scored on a document it was trained on.
invoice2data is evaluation-only (12 documents, all of them held out).
"""

from __future__ import annotations

import hashlib

EVAL_SHARE = {"sroie": 0.3, "bitext": 0.2, "invoice2data": 1.0}


def split_of(dataset: str, record_id: str) -> str:
    share = EVAL_SHARE.get(dataset, 0.2)
    digest = hashlib.sha256(f"{dataset}:{record_id}".encode()).digest()
    return "eval" if int.from_bytes(digest[:4], "big") / 2**32 < share else "train"
