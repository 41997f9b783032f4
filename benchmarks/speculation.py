"""Whether speculation changes what the real model writes: decoded with and without it, field by field.

Greedy verification accepts a drafted token only where the model's own
choice is that token, so with exact arithmetic the output cannot change. Real
kernels round differently when a pass is one token wide and when it is nine:
this measures how often that flips a field value, per model folder, on the
documents ``docket bench`` uses.

    python -m benchmarks.speculation MODEL_DIR [MODEL_DIR ...] [--invoices 6] [--tickets 10]

For the fp32 model, build one with ``python -m training.build_default --fp32``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from config.settings import get_settings
from service.extract.engine import Engine
from training.bench import documents


def flat_values(fields: dict) -> dict[str, Any]:
    """Every value by path (``line_items[2].amount``), plus each list's length."""
    out: dict[str, Any] = {}
    for name, result in fields.items():
        if isinstance(result.value, list):
            out[f"{name}.length"] = len(result.value)
            for i, item in enumerate(result.value):
                out.update({f"{name}[{i}].{key}": value for key, value in (item or {}).items()})
        else:
            out[name] = result.value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speculation", description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+", type=Path)
    parser.add_argument("--invoices", type=int, default=6)
    parser.add_argument("--tickets", type=int, default=10)
    args = parser.parse_args()
    settings = get_settings()
    docs = documents(args.invoices, args.tickets)
    for model_dir in args.model_dirs:
        engine = Engine(model_dir, settings)
        changed_values = values = changed_docs = 0
        for name, type_name, doc in docs:
            doc_type = engine.doc_types[type_name]
            fast = flat_values(engine.extract(doc_type, doc, speculate=True).fields)
            step = flat_values(engine.extract(doc_type, doc, speculate=False).fields)
            keys = fast.keys() | step.keys()
            changed = sorted(k for k in keys if fast.get(k) != step.get(k))
            changed_values, values, changed_docs = changed_values + len(changed), values + len(keys), changed_docs + bool(changed)
            print(f"{model_dir.name}  {name:26} {len(changed):3} of {len(keys):3} values differ  {', '.join(changed[:6])}", flush=True)
        print(f"{model_dir.name}: {changed_values} of {values} values and {changed_docs} of {len(docs)} documents differ with speculation on", flush=True)


if __name__ == "__main__":
    main()
