"""The score cache: a guard report is scored once per model, code, settings and data, and found again only by all of them."""

from __future__ import annotations

import json
import re
import shutil

from config.settings import ROOT, Settings

from service.extract.engine import META_FILE
from training import score_cache
from training.retrain import SHARED_EVAL, Reporter, evaluate_shared
from training.scoring_pool import ScoringPool


def test_the_key_follows_the_model_the_settings_the_data_and_the_size(make_settings, tiny_model_dir, tmp_path):
    settings = make_settings()
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    data = tmp_path / "eval.jsonl"
    data.write_text('{"id": "a", "text": "Total 3.00", "labels": {"total": "3.00"}}\n')
    key = score_cache.cache_key(score_cache.scorer_digest(model, settings), data, 60)

    assert score_cache.cache_key(score_cache.scorer_digest(model, settings), data, 60) == key
    assert score_cache.cache_key(score_cache.scorer_digest(model, settings.model_copy(update={"model_dir": tmp_path})), data, 60) == key
    assert score_cache.cache_key(score_cache.scorer_digest(model, settings), data, 61) != key
    assert score_cache.cache_key(score_cache.scorer_digest(model, settings.model_copy(update={"max_new_tokens": 99})), data, 60) != key
    # Where the installation lives and what the API does decide nothing a report says.
    elsewhere = settings.model_copy(update={"var_dir": tmp_path / "moved", "database_url": "postgresql://elsewhere/db",
                                            "rate_limit_requests": 7, "schema_dir": shutil.copytree(
                                                settings.schema_dir, tmp_path / "schemas")})
    assert score_cache.cache_key(score_cache.scorer_digest(model, elsewhere), data, 60) == key
    data.write_text('{"id": "a", "text": "Total 4.00", "labels": {"total": "4.00"}}\n')
    other_data = score_cache.cache_key(score_cache.scorer_digest(model, settings), data, 60)
    assert other_data != key
    meta = json.loads((model / META_FILE).read_text())
    (model / META_FILE).write_text(json.dumps({**meta, "calibration": {"recalibrated": True}}))
    assert score_cache.cache_key(score_cache.scorer_digest(model, settings), data, 60) not in (key, other_data)


def test_the_key_holds_every_setting_extraction_reads():
    """A setting the engine reads but the key leaves out would let a report outlive a change that alters it."""
    read = set()
    for path in [*(ROOT / "service" / "extract").rglob("*.py"), ROOT / "service" / "evaluation.py",
                 ROOT / "training" / "calibrate.py", ROOT / "training" / "scoring_pool.py"]:
        read |= set(re.findall(r"settings\.([a-z_]+)\b(?!\()", path.read_text()))
    folders = {"model_dir", "model_cache_dir", "var_dir", "schema_dir"}  # contents hashed, or caches of them
    pool = {"eval_workers"}  # how many processes score, not what they answer (the threads each gets are in the key)
    assert read - folders - pool <= set(score_cache.EXTRACTION_SETTINGS), read
    assert set(score_cache.EXTRACTION_SETTINGS) <= set(Settings.model_fields)


def test_a_report_is_computed_once_and_a_torn_entry_is_a_miss(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"doc_type": "invoice", "fields": {}, "n": len(calls)}

    first, hit = score_cache.cached(tmp_path, "k", compute)
    again, hit_again = score_cache.cached(tmp_path, "k", compute)
    assert (hit, hit_again, first, again, len(calls)) == (False, True, first, first, 1)
    (tmp_path / "k.json").write_text('{"doc_type": "inv')  # a write cut short
    mended, hit = score_cache.cached(tmp_path, "k", compute)
    assert not hit and mended["n"] == 2 and json.loads((tmp_path / "k.json").read_text()) == mended


def test_the_active_models_guard_scores_are_read_back_not_scored_again(make_settings, tiny_model_dir):
    """Through the real engine and the real evaluation splits: the second run's 'active' is the first run's scores."""
    settings = make_settings(model_dir=tiny_model_dir, max_new_tokens=60)
    lines: list[str] = []
    with ScoringPool(settings, workers=1) as pool:
        first = evaluate_shared(pool, tiny_model_dir, 1, Reporter(log=lines.append))
        assert set(first) == {name for name, path in SHARED_EVAL.items() if path.exists()} and first
        assert not lines and all(report["documents"] == 1 for report in first.values())

        again = evaluate_shared(pool, tiny_model_dir, 1, Reporter(log=lines.append))
        assert again == first
        assert len(lines) == len(first) and all("read from the score cache" in line for line in lines)
        assert len(list((settings.var_dir / "score-cache").glob("*.json"))) == len(first)

        lines.clear()
        evaluate_shared(pool, tiny_model_dir, 2, Reporter(log=lines.append))  # other documents: scored, not read
        assert not lines and len(list((settings.var_dir / "score-cache").glob("*.json"))) == 2 * len(first)
