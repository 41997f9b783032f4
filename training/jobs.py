"""The training queue's rq jobs, enqueued by name: ``run_training`` and ``warm_guard``.

Only a worker that takes a training job imports this module (and with it
torch); see :mod:`service.training_runs` for how runs are requested. The job
writes its progress, log lines and loss curve onto the ``training_runs`` row
as it goes (through a session of its own, so they are visible while it runs),
and ends the run done or failed. A failure before the gate leaves the
registry — and so the active model — exactly as it was.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from service.db import Database
from service.models import DONE, FAILED, QUEUED
from service.tasks import describe_failure, get_runtime
from service.training_runs import append_log, finish_run, get_run, start_run
from training.retrain import (
    Reporter,
    RetrainConfig,
    collect_shared,
    engine_settings,
    retrain,
    served_model_dir,
    submit_shared,
)
from training.scoring_pool import ScoringPool

log = logging.getLogger(__name__)

WARMUP_NICE = 10  # the warm-up's scoring processes yield the cores to extraction workers beside them
PROGRESS_EVERY_S = 1.0  # at most one progress write a second; stage changes and log lines at once
LOSS_POINTS = 500  # the loss curve kept on the run is thinned to about this many points


class RunWriter:
    """Writes a run's progress and log through its own session, committing each write."""

    def __init__(self, db: Database, run_id: int) -> None:
        self.session = db.sessionmaker()
        self.run = get_run(self.session, run_id)
        self._written = 0.0
        self.reporter = Reporter(progress=self.progress, log=self.log)

    def progress(self, data: dict[str, Any]) -> None:
        now = time.monotonic()
        stage_changed = data.get("stage") != (self.run.progress or {}).get("stage")
        self.run.progress = dict(data)
        if stage_changed or now - self._written >= PROGRESS_EVERY_S:
            self._write_losses()
            self.session.commit()
            self._written = now

    def log(self, line: str) -> None:
        log.info("training run %s: %s", self.run.id, line)
        append_log(self.run, f"{time.strftime('%H:%M:%S')} {line}")
        self.session.commit()

    def _write_losses(self) -> None:
        losses = self.reporter.losses
        step = max(1, len(losses) // LOSS_POINTS + (1 if len(losses) % LOSS_POINTS else 0))
        self.run.metrics = {**(self.run.metrics or {}), "loss": losses[::step]}

    def close(self) -> None:
        self.session.close()


def run_training(run_id: int) -> dict[str, Any]:
    """Retrain from approved examples (see :mod:`training.retrain`) and record how it went on the run."""
    runtime = get_runtime()
    writer = RunWriter(runtime.db, run_id)
    run = writer.run
    try:
        if run.status != QUEUED:
            return {"run_id": run_id, "status": run.status}
        start_run(writer.session, run)
        cfg = RetrainConfig.from_params(run.params or {}, runtime.settings)
        writer.log(f"started: {cfg}")
        try:
            with runtime.db.session() as session:
                outcome = retrain(session, runtime.settings, run_id, cfg, writer.reporter)
        except Exception as exc:
            writer.session.rollback()
            writer.log(traceback.format_exc().rstrip())
            writer._write_losses()
            finish_run(writer.session, run, FAILED, error=describe_failure(exc))
            raise
        run.output_model_version = outcome.version
        writer._write_losses()
        run.metrics = {**run.metrics, **outcome.metrics, "gate": outcome.decision.to_dict()}
        run.progress = {"stage": "done"}
        writer.log(f"{outcome.version} {'promoted' if outcome.decision.promote else 'rejected'}")
        finish_run(writer.session, run, DONE)
        return {"run_id": run_id, "status": DONE, "version": outcome.version, "promoted": outcome.decision.promote}
    finally:
        writer.close()


def warm_guard() -> dict[str, Any]:
    """Score the served model's guard into the score cache (see :mod:`service.warmup`), as a run would.

    The scoring is the run's own (``evaluate_shared`` with the settings and
    guard size a run takes by default, on a pool of the same size), so the
    run finds the reports under the keys it looks for; a report already in
    the cache is read, not scored again.
    """
    runtime = get_runtime()
    settings = runtime.settings
    cfg = RetrainConfig.from_params({}, settings)
    with runtime.db.session() as session:
        model_dir = served_model_dir(session, settings)
    started = time.monotonic()
    with ScoringPool(engine_settings(settings, cfg), nice=WARMUP_NICE) as pool:
        submitted = submit_shared(pool, model_dir, cfg.eval_shared, Reporter(log=log.info))
        cached = sum(1 for entry in submitted.values() if isinstance(entry, dict))  # a report, not documents in flight
        reports = collect_shared(pool, submitted)
    minutes = round((time.monotonic() - started) / 60, 2)
    log.info("the guard of %s on %d documents per split: %s, in %.2f min (%d read from the score cache)",
             model_dir.name, cfg.eval_shared, ", ".join(sorted(reports)) or "no evaluation splits", minutes, cached)
    return {"model_dir": str(model_dir), "splits": sorted(reports), "cached": cached, "minutes": minutes}
