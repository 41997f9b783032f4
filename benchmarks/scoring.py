"""How fast a retraining run scores documents: in its own process against the scoring pool, side by side.

A run scores the candidate and the active model on the same documents (the
golden set, the guard on ../shared/data). This takes the first documents of
each evaluation split of ../shared/data, scores them with the default model
twice over (as a run does, once per model), once in the calling process with
every core to onnxruntime and once over ``training.scoring_pool`` with one
process per core, and prints documents per minute for both and their ratio.
It also counts the documents whose answers differ. Drafts no longer depend on
the documents decoded before (they come from answers fixed with the model),
but a pool process runs onnxruntime on fewer threads, and int8 kernels split
over another number of threads may round a near-tie otherwise.

    python -m benchmarks.scoring [--documents 12] [--model MODEL_DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from config.settings import get_settings
from service.evaluation import select_examples
from service.extract.artifacts import resolve_model_dir
from service.splits import split_of
from training.retrain import SHARED_EVAL
from training.scoring_pool import ScoringPool, worker_count


def score(pool: ScoringPool, model_dir: Path, batches: list) -> tuple[float, list]:
    started = time.perf_counter()
    pending = [pool.submit(model_dir, doc_type, examples) for doc_type, examples in batches for _ in range(2)]
    records = [r for p in pending for r in pool.records(p)]
    return time.perf_counter() - started, records


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scoring", description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=12, help="documents per evaluation split")
    parser.add_argument("--model", type=Path, default=None, help="a model folder (default: the default model)")
    parser.add_argument("--workers", type=int, default=None, help="the pool's processes (default: one per core)")
    args = parser.parse_args()
    settings = get_settings()
    model_dir = args.model or resolve_model_dir(settings)
    batches = [select_examples(path, limit=args.documents, include=lambda e: split_of(e.dataset, e.id) == "eval")
               for path in SHARED_EVAL.values() if path.exists()]
    documents = 2 * sum(len(examples) for _, examples in batches)
    results = {}
    for name, workers in (("in-process", 1), ("pool", args.workers or worker_count(settings))):
        with ScoringPool(settings, workers=workers) as pool:
            score(pool, model_dir, [(t, e[:1]) for t, e in batches])  # load the models; not timed
            seconds, records = score(pool, model_dir, batches)
        results[name] = (seconds, records, workers, pool.engine_settings.intra_op_threads)
        print(f"{name:<11} {workers} process(es), intra_op_threads {results[name][3] or 'all'}: "
              f"{documents} documents in {seconds:.1f} s, {60 * documents / seconds:.1f} a minute", flush=True)
    differ = [a.id for a, b in zip(results["in-process"][1], results["pool"][1]) if a.extraction.values() != b.extraction.values()]
    print(f"pool / in-process: {results['in-process'][0] / results['pool'][0]:.2f}x the documents a minute; "
          f"{len(differ)} of {documents} answers differ"
          " (onnxruntime on another number of threads may round a near-tie otherwise)"
          + (f": {sorted(set(differ))}" if differ else ""))

if __name__ == "__main__":
    main()
