"""Write synthetic examples as JSON lines.

    python -m training.synth --kind invoice --n 100 --seed 1 --out data/inv.jsonl [--pdf-dir pdfs/]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import HELD_OUT_FAMILY, INVOICE_FAMILIES, generate_invoices, generate_receipts, generate_tickets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.synth", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["invoice", "receipt", "ticket"], required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="JSONL file (default: stdout)")
    ap.add_argument("--pdf-dir", type=Path, help="also save each invoice PDF here")
    ap.add_argument("--families", help=f"comma-separated invoice families (default: all but {HELD_OUT_FAMILY}); "
                                       f"'all' includes it. Known: {', '.join(INVOICE_FAMILIES)}")
    ap.add_argument("--languages", help="comma-separated languages (invoice: en,de,fr,nl; ticket: en,de)")
    args = ap.parse_args(argv)

    langs = args.languages.split(",") if args.languages else None
    if args.kind == "invoice":
        fams = None if not args.families else (INVOICE_FAMILIES if args.families == "all" else args.families.split(","))
        examples = generate_invoices(args.n, args.seed, families=fams, languages=langs, keep_pdf=bool(args.pdf_dir))
    elif args.kind == "receipt":
        examples = generate_receipts(args.n, args.seed)
    else:
        examples = generate_tickets(args.n, args.seed, **({"languages": langs} if langs else {}))

    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    if args.pdf_dir:
        args.pdf_dir.mkdir(parents=True, exist_ok=True)
    try:
        for ex in examples:
            if args.pdf_dir and ex.pdf:
                (args.pdf_dir / f"{ex.id}.pdf").write_bytes(ex.pdf)
            out.write(json.dumps(ex.to_json(), ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
