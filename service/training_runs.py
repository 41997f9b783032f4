"""Training runs as the serving side sees them: request one, follow it, record how it ended.

A run is one rq job on the training queue. The job function lives in
``training.jobs`` and is enqueued by its dotted path, so only a worker that
takes a training job imports the training stack (torch); the API, the CLI and
extraction workers never do.

Only one run may be queued or running: the run row takes ``slot`` 1, whose
unique constraint makes the database refuse a second one even when two
requests race. A run whose job is gone (its worker was killed, Redis lost it)
gives the slot back the next time someone asks for a run.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Callback, Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from config.settings import Settings
from service.exceptions import NotFound, TrainingRunActive
from service.models import (
    DONE,
    FAILED,
    PROCESSING,
    QUEUED,
    AuditEvent,
    TrainingRun,
    utcnow,
)
from service.queue import TRAINING
from service.registry import active_version
from service.tasks import describe_failure, get_runtime

log = logging.getLogger(__name__)

RUN_JOB = "training.jobs.run_training"
HELD = 1  # the value of TrainingRun.slot while a run holds it
LOST_STATES = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
ENQUEUE_GRACE_S = 30  # a run younger than this whose job is missing is being enqueued, not lost
LOG_LIMIT = 200_000  # characters of log kept on a run; older lines are dropped


def job_id_for(run_id: int) -> str:
    return f"docket-training-run-{run_id}"


def current_run(session: Session) -> TrainingRun | None:
    """The run holding the slot (queued or running), if any."""
    return session.scalar(select(TrainingRun).where(TrainingRun.slot == HELD))


def get_run(session: Session, run_id: int) -> TrainingRun:
    # Ids are 32-bit (an Integer key); a larger number would overflow the query rather than find nothing.
    run = session.get(TrainingRun, run_id) if 0 < run_id < 2**31 else None
    if run is None:
        raise NotFound(f"No training run {run_id}.")
    return run


def request_run(session: Session, connection: Redis, settings: Settings, actor: str,
                params: dict[str, Any] | None = None) -> TrainingRun:
    """Queue a retraining run, or raise :class:`TrainingRunActive` naming the run already under way."""
    release_lost_run(session, connection)
    active = active_version(session)
    run = TrainingRun(
        status=QUEUED,
        slot=HELD,
        requested_by=actor,
        params=dict(params or {}),
        base_model_version=active.version if active else "",
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        holder = current_run(session)
        where = f"run {holder.id} is {holder.status}" if holder else "another run was just requested"
        raise TrainingRunActive(f"Only one training run at a time: {where}.",
                                run_id=holder.id if holder else None) from None
    run.job_id = job_id_for(run.id)
    session.add(AuditEvent(actor=actor, action="training.requested", data={"run_id": run.id, "params": run.params}))
    session.commit()
    try:
        Queue(TRAINING, connection=connection).enqueue(
            RUN_JOB,
            run.id,
            job_id=run.job_id,
            job_timeout=settings.training_timeout_s,
            on_failure=Callback(record_run_failure),
            result_ttl=7 * 24 * 3600,
            failure_ttl=30 * 24 * 3600,
            description=f"training run {run.id}",
        )
    except Exception as exc:
        finish_run(session, run, FAILED, error=f"could not queue the run: {type(exc).__name__}: {exc}")
        raise
    return run


def release_lost_run(session: Session, connection: Redis) -> None:
    """Fail the run holding the slot if its job no longer exists or ended without telling us."""
    run = current_run(session)
    if run is None or not run.job_id:
        return
    try:
        status = Job.fetch(run.job_id, connection=connection).get_status(refresh=True)
    except NoSuchJobError:
        status = None
        if utcnow() - run.created_at < timedelta(seconds=ENQUEUE_GRACE_S):
            return  # committed a moment ago, its job about to be enqueued
    if status is None or status in LOST_STATES:
        finish_run(session, run, FAILED, error=f"the run's job was lost ({status or 'gone from the queue'})")


def start_run(session: Session, run: TrainingRun) -> None:
    run.status = PROCESSING
    run.started_at = utcnow()
    session.add(AuditEvent(actor="worker", action="training.started", data={"run_id": run.id}))
    session.commit()


def finish_run(session: Session, run: TrainingRun, status: str, error: str | None = None) -> None:
    """End a run (done or failed) and give the slot back. Commits."""
    run.status = status
    run.slot = None
    run.error = error
    run.finished_at = utcnow()
    session.add(AuditEvent(actor="worker", action=f"training.{'done' if status == DONE else 'failed'}",
                           data={"run_id": run.id, "error": error, "output": run.output_model_version}))
    session.commit()


def append_log(run: TrainingRun, line: str) -> None:
    text = (run.log or "") + line.rstrip("\n") + "\n"
    run.log = text[-LOG_LIMIT:]


def record_run_failure(job: Job, connection: Redis, exc_type: type, exc: BaseException, tb: Any) -> None:
    """rq failure callback: a job that died outside its own error handling (a timeout) still fails its run."""
    run_id = job.args[0] if job.args else None
    if run_id is None:
        return
    with get_runtime().db.session() as session:
        run = session.get(TrainingRun, run_id)
        if run is not None and run.slot == HELD:
            finish_run(session, run, FAILED, error=describe_failure(exc))


def run_json(run: TrainingRun) -> dict[str, Any]:
    """A run as the API and the CLI show it."""
    return {
        "id": run.id,
        "status": run.status,
        "requested_by": run.requested_by,
        "base_model_version": run.base_model_version or None,
        "output_model_version": run.output_model_version,
        "params": run.params,
        "progress": run.progress,
        "metrics": run.metrics,
        "error": run.error,
        "log": run.log,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "links": {"self": f"/v1/training-runs/{run.id}"},
    }
