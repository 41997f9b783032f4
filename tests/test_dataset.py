"""Training examples from the shared datasets: what is labelled, and what is taught as null."""

from __future__ import annotations

import json
from pathlib import Path

from service.splits import split_of
from training.dataset import bitext_examples, has_tagged_entity, sroie_examples

PLAIN_RECEIPT = "KEDAI MAJU SDN BHD\nNO. 5, JALAN SETIA\n12/03/2018\nTEH TARIK 2.50\nTOTAL 2.50\nTHANK YOU"
CUSTOMER_RECEIPT = "KEDAI MAJU SDN BHD\nCUSTOMER: ALI\nINVOICE DUE 30/03/2018\nTOTAL 2.50"


def _train_ids(n: int) -> list[str]:
    return [i for i in (f"{k:03d}" for k in range(100)) if split_of("sroie", i) == "train"][:n]


def _sroie_folder(tmp_path: Path, texts: list[str]) -> Path:
    folder = tmp_path / "sroie"
    (folder / "text").mkdir(parents=True)
    rows = []
    for rid, text in zip(_train_ids(len(texts)), texts):
        (folder / "text" / f"{rid}.txt").write_text(text)
        rows.append({"id": rid, "input": f"text/{rid}.txt", "vendor_name": "KEDAI MAJU SDN BHD",
                     "vendor_address": "NO. 5, JALAN SETIA", "invoice_date": "12/03/2018", "total": "2.50"})
    (folder / "normalized.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


def test_receipt_fields_with_nothing_to_introduce_them_are_taught_as_null(tmp_path):
    plain, with_cues = sroie_examples("train", _sroie_folder(tmp_path, [PLAIN_RECEIPT, CUSTOMER_RECEIPT]))
    for name in ("buyer_name", "due_date", "purchase_order", "amount_due", "iban"):
        assert name in plain.labelled and plain.target[name] is None, name
    # a customer line and a due date: those fields stay out of the loss, neither taught nor guessed
    assert {"buyer_name", "due_date", "amount_due"}.isdisjoint(with_cues.labelled)
    assert {"purchase_order", "iban"} <= with_cues.labelled
    # the four SROIE labels are labelled on both; fields SROIE never labels are not
    for ex in (plain, with_cues):
        assert {"vendor_name", "vendor_address", "invoice_date", "total"} <= ex.labelled
        assert "invoice_number" not in ex.labelled and "line_items" not in ex.labelled


def _bitext_folder(tmp_path: Path, rows: list[dict]) -> Path:
    folder = tmp_path / "bitext"
    folder.mkdir(parents=True)
    ids = [i for i in (f"bitext_{k:05d}" for k in range(200)) if split_of("bitext", i) == "train"]
    rows = [{"id": rid, **row} for rid, row in zip(ids, rows)]
    (folder / "normalized.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


def test_ticket_ids_and_names_a_message_does_not_have_are_taught_as_null(tmp_path):
    text = "I need assistance cancelling purchase 0732201349959"
    rows = [
        {"text": text, "category": "ORDER", "order_id": "732201349959", "invoice_id": None, "customer_name": None,
         "entity": {"type": "order_id", "start": 38, "end": 51}},
        {"text": "how do I change my shipping address", "category": "SHIPPING", "order_id": None,
         "invoice_id": None, "customer_name": None, "entity": None},
    ]
    tagged, plain = bitext_examples("train", _bitext_folder(tmp_path, rows))
    # the id as written, leading zero kept, so the model learns to copy it
    assert tagged.target["order_id"] == "0732201349959"
    for ex in (tagged, plain):
        assert {"order_id", "invoice_id", "customer_name", "customer_email", "category", "language"} <= ex.labelled
        assert ex.target["invoice_id"] is None and ex.target["customer_name"] is None and ex.target["customer_email"] is None
        # what Bitext does not label at all stays out of the loss
        assert {"priority", "sentiment", "summary", "product"}.isdisjoint(ex.labelled)
    assert plain.target["order_id"] is None
    assert has_tagged_entity(tagged) and not has_tagged_entity(plain)
