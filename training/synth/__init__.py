"""Synthetic training data for Docket: invoices (PDF, read back through
:func:`service.ingest.ingest_pdf`), shop receipts (text) and support tickets
(e-mails), each with the model's target and the normalised labels, both known
from construction.

    from training.synth import generate_invoices, generate_tickets
    for ex in generate_invoices(100, seed=1): ...

Same seed, same bytes. See ``python -m training.synth --help`` for the CLI.
"""

from .example import Example
from .invoices import generate_invoices
from .layouts import HELD_OUT_FAMILY, INVOICE_FAMILIES
from .receipts import generate_receipts
from .tickets import generate_tickets

__all__ = ["Example", "generate_invoices", "generate_receipts", "generate_tickets", "INVOICE_FAMILIES",
           "HELD_OUT_FAMILY"]
