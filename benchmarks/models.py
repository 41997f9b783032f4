"""Two model folders side by side in one run: what a change of build recipe does to speed.

On this kind of machine a run of the same code drifts by ±10%, more than
most recipe changes are worth, so the two models take turns document by
document, and each document is decoded ``--rounds`` times per model and the
best time kept. Reports, by document type, the summed best times
and their ratio (B / A), model calls, how many output fields agree, and a
prefill and decode calls on a cache of ``--cache`` tokens.

    python -m benchmarks.models DIR_A DIR_B [--invoices 6] [--tickets 4] [--rounds 3] [--cache 700]

The README's recipe comparisons (the int8 LM head, blocks of 64) were
measured this way.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.graphs import agreement, call_times  # noqa: E402
from config.settings import get_settings  # noqa: E402
from service.extract.engine import MODEL_FILE, Engine  # noqa: E402
from training.bench import documents, warm_up  # noqa: E402


def best_of(engine: Engine, type_name: str, doc, rounds: int) -> tuple[float, object]:
    """The fastest of *rounds* decodes of *doc*."""
    doc_type = engine.doc_types[type_name]
    best, result = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        result = engine.extract(doc_type, doc)
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.models", description=__doc__.splitlines()[0])
    parser.add_argument("model_a", type=Path)
    parser.add_argument("model_b", type=Path)
    parser.add_argument("--invoices", type=int, default=6)
    parser.add_argument("--tickets", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=int, default=700, help="KV cache length for the per-call timings")
    args = parser.parse_args()

    settings = get_settings()
    folders = {"a": args.model_a, "b": args.model_b}
    engines = {key: Engine(folder, settings) for key, folder in folders.items()}
    docs = documents(args.invoices, args.tickets)
    for engine in engines.values():
        warm_up(engine, None, docs, settings)

    totals: dict[str, dict[str, float]] = {}
    same = fields = 0
    for name, type_name, doc in docs:
        row, values = {"doc": name, "type": type_name}, {}
        for key, engine in engines.items():
            seconds, result = best_of(engine, type_name, doc, args.rounds)
            values[key] = result.values()
            total = totals.setdefault(type_name, {"a_s": 0.0, "a_calls": 0, "b_s": 0.0, "b_calls": 0})
            total[f"{key}_s"] += seconds
            total[f"{key}_calls"] += result.tokens["model_calls"]
            row[f"{key}_s"], row[f"{key}_calls"] = round(seconds, 3), result.tokens["model_calls"]
        agree, count = agreement(values["a"], values["b"])
        same, fields = same + agree, fields + count
        print(json.dumps({**row, "b/a": round(row["b_s"] / row["a_s"], 3), "fields_same": f"{agree}/{count}"}), flush=True)

    summary = {"models": {k: str(v) for k, v in folders.items()}, "rounds": args.rounds, "fields_same": f"{same}/{fields}",
               "by_type": {t: {**{k: round(v, 3) for k, v in row.items()}, "b/a": round(row["b_s"] / row["a_s"], 3)}
                           for t, row in totals.items()}}
    calls = {key: call_times(folder / MODEL_FILE, settings.intra_op_threads, args.cache) for key, folder in folders.items()}
    summary["calls"] = {metric: {**{k: round(calls[k][metric], 1) for k in calls}, "b/a": round(calls["b"][metric] / calls["a"][metric], 2)}
                        for metric in calls["a"]}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
