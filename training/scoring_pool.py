"""Extract the documents of an evaluation over one process per CPU core.

A retraining run scores two models on the same documents: the candidate and
the active model, on the golden set and the guard on ../shared/data, and the
candidate on its calibration documents. On a CPU one extraction is a chain of
small model calls, and between onnxruntime's kernels much of each call is
Python and masking on one core: two processes with one onnxruntime thread each
get through 1.28 times the documents of one process with two threads
(``python -m benchmarks.scoring``: 48 guard documents in 68.2 s against 87.3 s
on 2 cores). So the
run hands every (model, document) pair to this pool, both models' documents at
once, and the cores stay busy until the last one.

With one worker (``settings.eval_workers = 1``, or a CUDA device, which one
process already keeps busy) the documents are extracted in the calling
process with the settings as given.

Workers are spawned, not forked: the run that owns the pool has just trained
with torch, whose thread pools do not survive a fork.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.settings import Settings
from service.doctypes import DocumentType
from service.evaluation import DocumentRecord, Example, score_answer
from service.extract.engine import META_FILE, Engine
from service.extract.session import choose_providers
from training.calibrate import extractor

MOST_WORKERS = 4  # each worker holds both models (about 0.2 GB each); past a few, threads per worker serve better

# One process's engines, by model folder and the state of its metadata (a calibration rewrites it).
_engines: dict[str, tuple[int, Engine]] = {}
_settings: Settings | None = None


def _start_worker(settings: Settings, nice: int = 0) -> None:
    global _settings
    if nice:
        os.nice(nice)
    _settings = settings
    _engines.clear()


def _extract(model_dir: str, meta_mtime: int, doc_type: str, source: Any):
    """Runs in a worker: one document through the engine of *model_dir* as its metadata stands now."""
    held = _engines.get(model_dir)
    if held is None or held[0] != meta_mtime:
        engine = Engine(Path(model_dir), _settings.model_copy(update={"model_dir": Path(model_dir)}))
        held = _engines[model_dir] = (meta_mtime, engine)
    return extractor(held[1])(doc_type, source)


def worker_count(settings: Settings) -> int:
    """``settings.eval_workers``, or one per core (at most MOST_WORKERS) on a CPU and one with CUDA."""
    if settings.eval_workers:
        return settings.eval_workers
    if choose_providers(settings.use_cuda)[0] == "CUDAExecutionProvider":
        return 1
    return max(1, min(MOST_WORKERS, len(os.sched_getaffinity(0))))


@dataclass
class Pending:
    """Documents of one type submitted for one model; :meth:`ScoringPool.records` waits for them."""

    doc_type: DocumentType
    examples: list[Example]
    futures: list[Future]


class ScoringPool:
    """Extract documents with any number of models, over :func:`worker_count` processes.

    ``settings`` are the run's; workers run with them, but with the cores
    shared out between them (``engine_settings``, which is also what a score
    cache key must be made of).
    """

    def __init__(self, settings: Settings, workers: int | None = None, nice: int = 0):
        """*nice*: how much lower than the caller's the worker processes' CPU priority is (background scoring)."""
        self.workers = workers or worker_count(settings)
        if self.workers > 1:
            cores = len(os.sched_getaffinity(0))
            self.engine_settings = settings.model_copy(update={"intra_op_threads": max(1, cores // self.workers)})
            self._executor: Executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker, initargs=(self.engine_settings, nice),
            )
        else:
            self.engine_settings = settings
            _start_worker(settings)
            self._executor = ThreadPoolExecutor(1)  # one thread: an engine is used by one thread at a time

    def submit(self, model_dir: Path, doc_type: DocumentType, examples: list[Example]) -> Pending:
        meta = Path(model_dir) / META_FILE
        mtime = meta.stat().st_mtime_ns if meta.exists() else 0
        futures = [self._executor.submit(_extract, str(model_dir), mtime, doc_type.name, e.source) for e in examples]
        return Pending(doc_type, examples, futures)

    def records(self, pending: Pending, apply_rules: bool = True) -> list[DocumentRecord]:
        """Scored documents, in order; a document whose extraction raised counts as an answer of nulls.

        A worker that died (killed, out of memory) ends the evaluation instead:
        scoring its documents as nulls would reject a candidate for it.
        """
        out = []
        for example, future in zip(pending.examples, pending.futures):
            if isinstance(future.exception(), BrokenProcessPool):
                raise future.exception()
            out.append(score_answer(pending.doc_type, example, future.result, apply_rules))
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self.workers == 1:
            _engines.clear()

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
