"""Score the served model's guard before a retraining run needs it.

A run guards on the evaluation splits of ../shared/data by scoring both the
candidate and the model served now (``training.retrain``). The served model
is usually the previous run's candidate, whose scores the score cache already
holds; but a model that did not come out of a run (the shipped default model,
or one rolled back to) has never been scored, and the first run after it
would spend minutes of its time on it (4.2 of 32 on two cores).

So a training worker, at start and on each maintenance pass, asks for the
served model's guard to be scored once per version: a low-priority job on the
training queue (``training.jobs.warm_guard``, enqueued by its dotted path so
this module never imports the training stack) that fills the score cache while
the worker has nothing else to do. A run that finds the job still queued or
running waits behind it and then reads its result; one that starts first
scores the model itself, as it always did.
"""

from __future__ import annotations

import logging

from redis import Redis
from rq import Queue

from config.settings import Settings
from service.queue import TRAINING

log = logging.getLogger(__name__)

WARM_JOB = "training.jobs.warm_guard"
ASKED_KEY = "docket:guard-warmup:{version}"  # set once the served version's warm-up has been queued


def request_guard_warmup(connection: Redis, settings: Settings, version: str | None) -> bool:
    """Queue the scoring of *version*'s guard unless it was queued before; True if this call queued it.

    Nothing is queued when runs guard on nothing (``settings.eval_shared`` 0)
    or there is no model. The mark that it was asked for lasts a training
    job's timeout, so a warm-up lost with its worker is asked for again.
    """
    if settings.eval_shared <= 0 or not version:
        return False
    if not connection.set(ASKED_KEY.format(version=version), 1, nx=True, ex=settings.training_timeout_s):
        return False
    Queue(TRAINING, connection=connection).enqueue(
        WARM_JOB,
        job_timeout=settings.training_timeout_s,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"score the guard of {version}, the model served now, ahead of the next training run",
    )
    log.info("queued the scoring of %s's guard ahead of the next training run", version)
    return True
