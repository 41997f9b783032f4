"""Evaluation reports kept per model, code, settings and data, so a run does not score the same thing twice.

Each retraining run guards on the evaluation splits of ../shared/data by
scoring the candidate *and* the active model. The active model is usually the
previous run's candidate, already scored on the same documents by the same
code: minutes of a run on two cores spent on an answer the last run worked
out. A report is kept under ``var/score-cache`` and found again only by a key
of everything that decides it:

- the model folder's SHA-256 (weights, tokenizer, calibration: ``registry.artifact_sha256``),
- the source of the code that extracts and scores (``service/``, the extractor in
  ``training/calibrate.py``) and the document-type schemas,
- the settings extraction reads (:data:`EXTRACTION_SETTINGS`: decoding, threads, the provider), not
  where files live or what the API and the webhooks do, so moving an installation or changing an
  unrelated setting keeps its reports,
- the dataset file's bytes and how many documents are scored.

Change any of them and the key changes: a stale report can cost a miss, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.settings import ROOT, Settings
from service.registry import artifact_sha256

CODE = (ROOT / "service", ROOT / "training" / "calibrate.py")
# What the engine and the scoring read of the settings, besides folders (the model's and the schemas' contents
# are hashed; the index and model caches hold what those decide). tests/test_score_cache.py checks the engine
# reads nothing else, so a new decoding setting cannot be left out of the key.
EXTRACTION_SETTINGS = ("use_cuda", "intra_op_threads", "max_prompt_tokens", "max_new_tokens", "speculate_tokens")


def _files_digest(*roots: Path) -> str:
    """SHA-256 over the .py and .json files under *roots* (names and contents); read each time, it is cheap."""
    digest = hashlib.sha256()
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.suffix in (".py", ".json") and p.is_file())
        for path in files:
            digest.update(path.relative_to(root.parent).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def scorer_digest(model_dir: Path, settings: Settings) -> str:
    """What decides every report of one model: its folder, the code, the schemas and the settings.

    Hashing the model folder reads it whole, so a caller scoring several
    datasets works this out once and passes it to :func:`cache_key`.
    """
    parts = {
        "model": artifact_sha256(Path(model_dir)),
        "code": _files_digest(*CODE),
        "schemas": _files_digest(Path(settings.schema_dir).resolve()),
        "settings": {name: getattr(settings, name) for name in EXTRACTION_SETTINGS},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def cache_key(scorer: str, dataset: Path, limit: int) -> str:
    """The key of one report: the scorer (:func:`scorer_digest`), the dataset's bytes and the size."""
    data = hashlib.sha256(Path(dataset).read_bytes()).hexdigest()
    return hashlib.sha256(f"{scorer}\0{data}\0{limit}".encode()).hexdigest()


def read(cache_dir: Path, key: str) -> dict[str, Any] | None:
    """The report stored under *key*, or None; a torn or unreadable entry is a miss."""
    path = Path(cache_dir) / f"{key}.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # the next report stored under the key replaces it


def store(cache_dir: Path, key: str, report: dict[str, Any]) -> None:
    """Keep *report* under *key*; written aside and renamed, so a reader never sees half of it."""
    path = Path(cache_dir) / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, sort_keys=True))
    tmp.replace(path)


def cached(cache_dir: Path, key: str, compute: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """The report stored under *key*, or *compute*'s (then stored); and whether it came from the cache."""
    known = read(cache_dir, key)
    if known is not None:
        return known, True
    report = compute()
    store(cache_dir, key, report)
    return report, False
