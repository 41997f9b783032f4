"""The two ONNX graphs of the same weights, side by side in one run.

Merges the default adapter into the base and exports it twice, int8 the
shipped way (``training.export``): ``gqa`` (onnxruntime-genai's builder, fused
GroupQueryAttention) and ``optimum`` (optimum-onnx). Then, on the same
documents, alternating graph by graph so drift hits both alike:

* latency per document, p50/p95 by type, through the whole engine;
* one decode call (1 and 9 tokens fed) on a cache of ``--cache`` tokens, and
  a prefill of that many tokens;
* how many output fields the two graphs agree on (int8 arithmetic differs
  in the last bits, so greedy choices can part).

    python -m benchmarks.graphs [--invoices 6] [--tickets 10] [--cache 800] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.decode_profile import filled_cache, per_call_ms  # noqa: E402
from config.settings import get_settings  # noqa: E402
from service.extract.artifacts import DEFAULT_ADAPTER_DIR, default_model_dir  # noqa: E402
from service.extract.engine import MODEL_FILE, Engine, read_meta  # noqa: E402
from service.extract.session import ModelSession  # noqa: E402
from training.bench import documents, percentile, warm_up  # noqa: E402
from training.export import GRAPHS, export_onnx  # noqa: E402


def export_both(out: Path) -> dict[str, Path]:
    """Both graphs of the default adapter, with the shipped model's calibration, built once into *out*."""
    from training.base import ensure_base
    from training.merge import merge_adapter

    folders = {graph: out / graph for graph in GRAPHS}
    if all((f / MODEL_FILE).exists() for f in folders.values()):
        return folders
    meta = {k: v for k, v in read_meta(default_model_dir(get_settings())).items()
            if k in ("version", "calibration", "thresholds", "base_model")}
    with tempfile.TemporaryDirectory(prefix="docket-graphs-") as tmp:
        merged = merge_adapter(DEFAULT_ADAPTER_DIR, Path(tmp) / "merged", ensure_base())
        for graph, folder in folders.items():
            export_onnx(merged, folder, quantize=True, meta=meta, graph=graph)
    return folders


def call_times(model_path: Path, threads: int, cache_tokens: int) -> dict[str, float]:
    session = ModelSession(model_path, use_cuda=False, intra_op_threads=threads)
    cache, prefill = filled_cache(session, cache_tokens)
    return {"prefill_ms": prefill, "decode_1_ms": per_call_ms(session, cache, 1, 20),
            "decode_9_ms": per_call_ms(session, cache, 9, 20)}


def agreement(a: dict, b: dict) -> tuple[int, int]:
    same = sum(1 for k in a if json.dumps(a[k], default=str) == json.dumps(b.get(k), default=str))
    return same, len(a)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.graphs", description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=6)
    parser.add_argument("--tickets", type=int, default=10)
    parser.add_argument("--cache", type=int, default=800, help="KV cache length for the per-call timings")
    parser.add_argument("--keep", type=Path, default=None, help="build the two models here and reuse them")
    args = parser.parse_args()

    settings = get_settings()
    out = args.keep or Path(tempfile.mkdtemp(prefix="docket-graphs-"))
    folders = export_both(out)
    engines = {graph: Engine(folder, settings) for graph, folder in folders.items()}
    docs = documents(args.invoices, args.tickets)
    for engine in engines.values():
        warm_up(engine, None, docs, settings)

    seconds = {graph: {} for graph in GRAPHS}
    same = total = 0
    for name, type_name, doc in docs:
        values = {}
        for graph, engine in engines.items():
            started = time.perf_counter()
            result = engine.extract(engine.doc_types[type_name], doc)
            seconds[graph].setdefault(type_name, []).append(time.perf_counter() - started)
            values[graph] = result.values()
        agree, fields = agreement(values["gqa"], values["optimum"])
        same, total = same + agree, total + fields
        print(json.dumps({"doc": name, "type": type_name, "fields_same": f"{agree}/{fields}",
                          **{f"{g}_s": round(seconds[g][type_name][-1], 3) for g in GRAPHS}}), flush=True)

    threads = settings.intra_op_threads
    calls = {graph: call_times(folder / MODEL_FILE, threads, args.cache) for graph, folder in folders.items()}
    summary = {"fields_same": f"{same}/{total}", "by_type": {}, "calls": {}}
    for type_name in seconds["gqa"]:
        row = {}
        for graph in GRAPHS:
            row[f"{graph}_p50_s"] = round(percentile(seconds[graph][type_name], 0.5), 3)
            row[f"{graph}_p95_s"] = round(percentile(seconds[graph][type_name], 0.95), 3)
            row[f"{graph}_mean_s"] = round(statistics.mean(seconds[graph][type_name]), 3)
        row["gqa/optimum p50"] = round(row["gqa_p50_s"] / row["optimum_p50_s"], 2)
        summary["by_type"][type_name] = row
    for key in calls["gqa"]:
        summary["calls"][key] = {g: round(calls[g][key], 1) for g in GRAPHS}
        summary["calls"][key]["gqa/optimum"] = round(calls["gqa"][key] / calls["optimum"][key], 2)
    summary["nodes"] = {g: _node_count(folder / MODEL_FILE) for g, folder in folders.items()}
    print(json.dumps(summary, indent=2))


def _node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


if __name__ == "__main__":
    main()
