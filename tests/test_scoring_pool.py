"""The scoring pool: documents extracted in spawned worker processes score as they do in the calling process."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from service.doctypes import load_document_types
from service.evaluation import Example
from service.extract.engine import META_FILE
from training.scoring_pool import ScoringPool, worker_count

TEXTS = [
    "Invoice INV-2024-001\nACME GmbH\nTotal 119.00 EUR",
    "Rechnung 77\nMüller AG\nGesamt 12,50 EUR",
    "Hello, my order #A-1234 never arrived. Anna",
]


@pytest.fixture
def invoice(make_settings):
    return load_document_types(make_settings().schema_dir)["invoice"]


def examples() -> list[Example]:
    return [Example(f"doc-{i}", text, {"total": "119.00"}) for i, text in enumerate(TEXTS)]


def answers(records) -> list[tuple]:
    return [(r.id, r.error, {name: f.value for name, f in r.extraction.fields.items()}, [o.correct for o in r.outcomes])
            for r in records]


def test_two_worker_processes_answer_as_the_calling_process_does(make_settings, tiny_model_dir, invoice):
    settings = make_settings(model_dir=tiny_model_dir, max_new_tokens=60, intra_op_threads=1)
    with ScoringPool(settings, workers=1) as here:
        expected = here.records(here.submit(tiny_model_dir, invoice, examples()))
    with ScoringPool(settings, workers=2) as pool:
        assert pool.engine_settings.intra_op_threads >= 1
        got = pool.records(pool.submit(tiny_model_dir, invoice, examples()))
    assert answers(got) == answers(expected)
    confidences = [[f.confidence for r in records for f in r.extraction.fields.values()] for records in (got, expected)]
    assert confidences[0] == pytest.approx(confidences[1], abs=1e-6)
    assert all(r.error is None for r in got)
    assert any(value is not None for r in got for value in r.extraction.values().values())  # real answers


def test_a_document_that_fails_counts_as_nulls_and_the_others_are_scored(make_settings, tiny_model_dir, invoice, tmp_path):
    settings = make_settings(model_dir=tiny_model_dir, max_new_tokens=60)
    gone = Example("gone", tmp_path / "missing.txt", {"total": "1.00"})
    with ScoringPool(settings, workers=2) as pool:
        records = pool.records(pool.submit(tiny_model_dir, invoice, [examples()[0], gone]))
    assert records[0].error is None and records[0].extraction.fields
    assert "FileNotFoundError" in records[1].error
    assert [(o.field, o.predicted, o.correct) for o in records[1].outcomes] == [("total", None, False)]


def test_a_worker_reads_a_model_again_once_its_metadata_changes(make_settings, tiny_model_dir, invoice, tmp_path):
    """A calibration rewrites the candidate's metadata between its calibration documents and its evaluation."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    meta_path = model / META_FILE
    settings = make_settings(model_dir=model, max_new_tokens=60)
    with ScoringPool(settings, workers=2) as pool:
        before = pool.records(pool.submit(model, invoice, examples()[:2]))
        meta = json.loads(meta_path.read_text())
        meta_path.write_text(json.dumps({**meta, "version": "recalibrated"}))
        after = pool.records(pool.submit(model, invoice, examples()[:2]))
    assert {r.extraction.model_version for r in before} == {meta.get("version") or model.name}
    assert {r.extraction.model_version for r in after} == {"recalibrated"}


def test_one_worker_per_core_on_a_cpu_and_the_setting_wins(make_settings):
    cores = len(os.sched_getaffinity(0))
    assert worker_count(make_settings(use_cuda=False)) == max(1, min(4, cores))
    assert worker_count(make_settings(use_cuda=False, eval_workers=3)) == 3


def test_background_scoring_runs_at_a_lower_cpu_priority(make_settings, tiny_model_dir, invoice):
    """The warm-up's pool (training.jobs.warm_guard) yields the cores to extraction workers beside it."""
    settings = make_settings(model_dir=tiny_model_dir, max_new_tokens=20)
    with ScoringPool(settings, workers=2, nice=5) as pool:
        pool.records(pool.submit(tiny_model_dir, invoice, examples()[:2]))
        pids = list(pool._executor._processes)
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert len(pids) == 2 and all(os.getpriority(os.PRIO_PROCESS, pid) == min(mine + 5, 19) for pid in pids)
