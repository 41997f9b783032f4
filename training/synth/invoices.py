"""Invoices: decide the facts, draw them, read the PDF back like serving does.

The target is built from the same printed strings the PDF carries, then
checked against the ingested text; a document whose values do not survive
extraction verbatim (rare: a cell pypdf splits) is redrawn with a new seed
instead of teaching the model to invent text.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from decimal import Decimal

from service.ingest import ingest_pdf

from .example import Example
from .facts import Invoice, build_invoice
from .layouts import FAMILY_BY_NAME, HELD_OUT_FAMILY, INVOICE_FAMILIES, render

LANGUAGES = ("en", "de", "fr", "nl")


def _num(x: Decimal | None) -> float | None:
    return None if x is None else float(x)


def invoice_target(inv: Invoice) -> dict:
    """What the model writes: printed text, in the schema's key order."""
    return {
        "vendor_name": inv.vendor.name,
        "vendor_address": ", ".join(inv.vendor.address_lines),
        "vendor_tax_id": inv.vat_s,
        "buyer_name": inv.buyer.name if inv.buyer else None,
        "invoice_number": inv.number,
        "invoice_date": inv.issue_s,
        "due_date": inv.due_s,
        "purchase_order": inv.po,
        "currency": inv.currency,
        "subtotal": inv.subtotal_s,
        "tax": inv.tax_s,
        "total": inv.total_s,
        "amount_due": inv.amount_due_s,
        "iban": inv.iban_s,
        "line_items": [{"description": l.description, "quantity": l.qty_s, "unit_price": l.unit_s,
                        "amount": l.amount_s} for l in inv.lines],
    }


def invoice_labels(inv: Invoice) -> dict:
    """The normalised truth in the API schema."""
    return {
        "vendor_name": inv.vendor.name,
        "vendor_address": ", ".join(inv.vendor.address_lines),
        "vendor_tax_id": inv.vat,
        "buyer_name": inv.buyer.name if inv.buyer else None,
        "invoice_number": inv.number,
        "invoice_date": inv.issue.isoformat(),
        "due_date": inv.due.isoformat() if inv.due_s else None,
        "purchase_order": inv.po,
        "currency": inv.currency,
        "subtotal": _num(inv.subtotal),
        "tax": _num(inv.tax),
        "total": float(inv.total),
        "amount_due": _num(inv.amount_due),
        "iban": inv.iban,
        "line_items": [{"description": l.description, "quantity": _num(l.qty), "unit_price": _num(l.unit),
                        "amount": float(l.amount)} for l in inv.lines],
    }


def raw_values(target: dict) -> Iterator[tuple[str, str]]:
    """(field, text) pairs that must appear verbatim in the document text.

    The address is printed over several lines, so each of its parts is checked;
    the currency is a code the model maps from a symbol, so it is not checked.
    """
    for key, value in target.items():
        if key == "line_items":
            for i, item in enumerate(value):
                for k, v in item.items():
                    if v is not None:
                        yield f"line_items[{i}].{k}", v
        elif key == "vendor_address" and value:
            for part in value.split(", "):
                yield key, part
        elif value is not None and key not in ("currency",):
            yield key, value


def missing_values(target: dict, text: str) -> list[str]:
    return [f"{k}={v!r}" for k, v in raw_values(target) if v not in text]


def generate_invoices(n: int, seed: int, families: Iterable[str] | None = None,
                      languages: Iterable[str] | None = None, keep_pdf: bool = True) -> Iterator[Example]:
    """*n* invoices; by default every family except :data:`HELD_OUT_FAMILY`."""
    fams = list(families) if families is not None else [f for f in INVOICE_FAMILIES if f != HELD_OUT_FAMILY]
    langs = tuple(languages) if languages is not None else LANGUAGES
    if "en" not in langs:  # the US family is English by nature
        fams = [f for f in fams if not FAMILY_BY_NAME[f].options.us] or fams
    for i in range(n):
        fam = FAMILY_BY_NAME[fams[(i + seed) % len(fams)]]
        for attempt in range(8):
            rng = random.Random(f"invoice:{seed}:{i}:{attempt}")
            inv = build_invoice(rng, fam.options, langs)
            pdf = render(inv, fam, rng)
            doc = ingest_pdf(pdf)
            target = invoice_target(inv)
            if not missing_values(target, doc.text):
                break
        else:
            raise RuntimeError(f"invoice {i} ({fam.name}): values not found in text: {missing_values(target, doc.text)}")
        yield Example(
            id=f"inv-{seed}-{i:05d}", doc_type="invoice", text=doc.text, target=target,
            labels=invoice_labels(inv), pdf=pdf if keep_pdf else None,
            meta={"family": fam.name, "locale": inv.loc.code, "language": inv.lang, "pages": doc.page_count,
                  "attempts": attempt + 1},
        )
