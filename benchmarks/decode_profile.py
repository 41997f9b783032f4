"""Where one decode call's time goes, by onnxruntime operator: the model's arithmetic or the graph's plumbing.

A decode call feeds one token (or a speculative draft) on top of a KV cache
of a one-page invoice's length. onnxruntime's profiler times every kernel;
this sums them by operator type, per call. Profiling adds its own overhead,
so the wall time per call is reported beside an unprofiled one.

    python -m benchmarks.decode_profile [--cache 800] [--feed 1] [--calls 20] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from config.settings import get_settings
from service.extract.artifacts import resolve_model_dir
from service.extract.engine import MODEL_FILE
from service.extract.session import KVCache, ModelSession, session_options


def filled_cache(session: ModelSession, tokens: int) -> tuple[KVCache, float]:
    """A cache of *tokens* arbitrary tokens (a one-page invoice's worth by default), and the prefill's ms."""
    prompt = np.random.default_rng(0).integers(100, 20_000, tokens).tolist()
    if not prompt:  # --cache 0: the fed tokens are a prefill
        return session.empty_cache(), 0.0
    started = time.perf_counter()
    _, cache = session.forward(prompt, session.empty_cache(), keep=1)
    return cache, (time.perf_counter() - started) * 1000


def per_call_ms(session: ModelSession, cache, feed: int, calls: int) -> float:
    session.forward([5] * feed, cache, keep=feed)  # warm-up
    started = time.perf_counter()
    for _ in range(calls):
        session.forward([5] * feed, cache, keep=feed)
    return (time.perf_counter() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decode_profile", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=int, default=800, help="tokens already in the KV cache")
    parser.add_argument("--feed", type=int, default=1, help="tokens fed per call (1 + a draft's length when speculating)")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the model the settings serve")
    args = parser.parse_args()
    settings = get_settings()
    model_path = (args.model_dir or resolve_model_dir(settings)) / MODEL_FILE
    threads = settings.intra_op_threads

    plain = ModelSession(model_path, use_cuda=False, intra_op_threads=threads)
    cache, _ = filled_cache(plain, args.cache)
    wall = per_call_ms(plain, cache, args.feed, args.calls)

    with tempfile.TemporaryDirectory() as tmp:
        options = session_options(threads)  # the served session's, with the profiler on
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "decode")
        profiled = copy.copy(plain)
        profiled.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        # The cache's buffers, without the plain session's IOBinding (a binding serves one session).
        profiled_wall = per_call_ms(profiled, KVCache(cache.arrays, cache.used), args.feed, args.calls)
        events = json.loads(Path(profiled.session.end_profiling()).read_text())

    runs = sum(1 for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    spent, nodes = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            spent[e["args"]["op_name"]] += e["dur"]
            nodes[e["args"]["op_name"]] += 1
    kernels = sum(spent.values()) / runs / 1000
    print(f"{model_path}: cache {args.cache} tokens, {args.feed} fed a call")
    print(f"wall per call {wall:.1f} ms unprofiled, {profiled_wall:.1f} ms profiled; kernels {kernels:.1f} ms a call "
          f"over {sum(nodes.values()) // runs} nodes")
    for op, us in spent.most_common(12):
        share = us / sum(spent.values())
        print(f"  {op:18s} {us / runs / 1000:6.2f} ms  {share:5.1%}  ({nodes[op] // runs} nodes)")


if __name__ == "__main__":
    main()
