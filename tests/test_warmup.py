"""The served model's guard, scored by an idle training worker before a run needs it (service.warmup)."""

from __future__ import annotations

import os

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from service import db, tasks
from service.queue import EXTRACTION, TRAINING
from service.warmup import WARM_JOB, request_guard_warmup
from training.retrain import SHARED_EVAL


pytestmark = pytest.mark.usefixtures("forget_served_models")


def queued(connection: Redis) -> list[str]:
    return [job.func_name for job in Queue(TRAINING, connection=connection).jobs]


def test_the_warm_up_is_asked_for_once_per_served_version(make_settings, redis_conn):
    settings = make_settings(eval_shared=5)
    assert request_guard_warmup(redis_conn, settings, "v1") is True
    assert request_guard_warmup(redis_conn, settings, "v1") is False  # already queued
    assert request_guard_warmup(redis_conn, settings, "v2") is True  # another model is served now
    assert queued(redis_conn) == [WARM_JOB, WARM_JOB]
    assert 0 < redis_conn.ttl("docket:guard-warmup:v1") <= settings.training_timeout_s  # a lost job is asked again


def test_nothing_is_queued_without_a_guard_or_a_model(make_settings, redis_conn):
    assert request_guard_warmup(redis_conn, make_settings(eval_shared=0), "v1") is False
    assert request_guard_warmup(redis_conn, make_settings(eval_shared=5), None) is False
    assert queued(redis_conn) == []


@pytest.mark.skipif(not all(p.exists() for p in SHARED_EVAL.values()), reason="needs ../shared/data")
def test_an_idle_training_worker_scores_the_served_models_guard_into_the_score_cache(
        make_settings, sqlite_url, redis_url, redis_conn, tiny_model_dir):
    settings = make_settings(database_url=sqlite_url, redis_url=redis_url, model_dir=tiny_model_dir,
                             max_new_tokens=60, eval_shared=1)
    db.upgrade(settings.database_uri)
    tasks.init_runtime(settings)
    cache = settings.var_dir / "score-cache"

    tasks.make_worker(redis_conn, (EXTRACTION,)).work(burst=True, logging_level="WARNING")
    assert queued(redis_conn) == [] and not cache.exists()  # only a training worker asks

    worker = tasks.make_worker(redis_conn, (TRAINING,))
    worker.work(burst=True, logging_level="WARNING")  # its first maintenance pass queues the job, then it works it
    reports = sorted(cache.glob("*.json"))
    assert len(reports) == len(SHARED_EVAL)  # one report per evaluation split, under the keys a run looks for
    job = Queue(TRAINING, connection=redis_conn).finished_job_registry.get_job_ids()
    result = Job.fetch(job[0], connection=redis_conn).return_value()
    assert result["splits"] == sorted(SHARED_EVAL) and result["cached"] == 0
    assert result["model_dir"] == str(tiny_model_dir)
    stamps = [os.stat(p).st_mtime_ns for p in reports]

    tasks.make_worker(redis_conn, (TRAINING,)).work(burst=True, logging_level="WARNING")  # a restarted worker
    assert queued(redis_conn) == [] and [os.stat(p).st_mtime_ns for p in reports] == stamps  # asked for once

    Queue(TRAINING, connection=redis_conn).enqueue(WARM_JOB)  # asked again (say, the mark expired): read, not scored
    tasks.make_worker(redis_conn, (TRAINING,)).work(burst=True, logging_level="WARNING")
    latest = max(Queue(TRAINING, connection=redis_conn).finished_job_registry.get_job_ids(),
                 key=lambda i: Job.fetch(i, connection=redis_conn).ended_at)
    assert Job.fetch(latest, connection=redis_conn).return_value()["cached"] == len(SHARED_EVAL)
