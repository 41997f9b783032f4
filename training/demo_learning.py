"""The learning-loop demonstration: a layout family the shipped model never saw, learned from approved reviews.

    fresh documents of the held-out family (training.synth.HELD_OUT_FAMILY)
        → field accuracy of the served model                          (before)
    the training worker starts, idle: it scores the served model's guard
        ahead of the next run (service.warmup), as under `docket run`
    other documents of the family → POST /v1/documents → extraction jobs
        → a reviewer approves each one routed to review, correcting it
    one retraining run (the rq job of `docket train`, with a guard on the
        evaluation splits of ../shared/data) → gate → promoted or rejected
    the same fresh documents → field accuracy of the served model     (after)

Everything runs in this process against its own var folder (SQLite and an
embedded Redis unless DOCKET_REDIS_URL is set), so it never touches a real
deployment. The report (JSON and text) goes to ``--out``.

Usage: python -m training.demo_learning [--fresh 50] [--approve 50] [--eval-shared 60] [--train-layers N] [--approved-views N]
                                        [--precision auto|fp32|bf16] [--no-warmup]
                                        [--out artifacts/demo-learning]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from config.settings import ROOT, Settings, get_settings
from service import db, registry, tasks
from service.app import create_app
from service.auth import create_api_key
from service.doctypes import load_document_types
from service.extract.engine import Engine
from service.evaluation import Example, clean_label, summarize
from service.models import DONE, Document, TrainingRun, User
from service.queue import EXTRACTION, TRAINING, connect_redis
from service.reviews import approve, claim
from service.routing import REVIEW
from service.training_runs import request_run
from service.users import create_user
from training.calibrate import extractor
from training.retrain import scored
from training.synth import HELD_OUT_FAMILY, generate_invoices

# --- config ------------------------------------------------------------------
FRESH = 50  # documents measured before and after (never submitted)
FRESH_SEED = 9001
APPROVE = 50  # documents submitted through the API and approved (about 10 of them golden)
APPROVE_SEED = 9101
EVAL_SHARED = 60  # documents per ../shared/data evaluation split in the gate's guard
REVIEWER = "demo-reviewer@example.com"


@dataclass
class DemoConfig:
    fresh: int = FRESH
    approve: int = APPROVE
    eval_shared: int = EVAL_SHARED
    family: str = HELD_OUT_FAMILY
    retrain: dict[str, Any] = field(default_factory=dict)  # extra RetrainConfig params (tests: a tiny base)
    # The training worker starts before the documents come in, as `docket run` starts it with the API, and
    # scores the served model's guard while idle (service.warmup). False: it starts only for the run, which then
    # scores that guard itself (a first run that follows a worker's start at once).
    warmup: bool = True


def idle_training_worker(connection) -> float:
    """A training worker's first pass, before any run: it queues the served model's guard and scores it; minutes."""
    started = time.time()
    tasks.make_worker(connection, (TRAINING,)).work(burst=True, logging_level="WARNING")
    return round((time.time() - started) / 60, 2)


def accuracy_on(settings: Settings, database: db.Database, documents: list, model_dir: Path | None = None) -> dict[str, Any]:
    """Field accuracy on *documents* (synth Examples) of the model the registry serves now, or of *model_dir*."""
    doc_type = load_document_types(settings.schema_dir)["invoice"]
    engine = tasks.get_engine(settings, database) if model_dir is None else Engine(model_dir, settings)
    extract = extractor(engine)
    records = []
    for ex in documents:
        labels = {s.name: v for s in doc_type.fields if (v := clean_label(s, ex.labels.get(s.name))) is not None}
        records.append(scored(doc_type, Example(ex.id, ex.text, labels), extract))
    report = summarize(records)
    errors = [{"document": r.id, "field": o.field, "expected": o.expected, "predicted": o.predicted}
              for r in records for o in r.outcomes if not o.correct]
    return {"model": engine.model_version, "documents": len(records), "overall": report.overall.accuracy,
            "fields": {name: f.accuracy for name, f in report.fields.items()}, "errors": errors}


def submit_and_approve(settings: Settings, database: db.Database, connection, documents: list) -> dict[str, int]:
    """Submit each document as a PDF through the API, run the extraction jobs, approve those routed to review."""
    app = create_app(settings)
    client = app.test_client()
    with database.session() as session:
        key, _ = create_api_key(session, "demo", "submit,read")
        user = create_user(session, REVIEWER, "demo password 123", role="reviewer")
        user_id = user.id
    ids = []
    for ex in documents:
        form = {"file": (io.BytesIO(ex.pdf), f"{ex.id}.pdf", "application/pdf"), "doc_type": "invoice"}
        resp = client.post("/v1/documents", data=form, headers={"Authorization": f"Bearer {key}"},
                           content_type="multipart/form-data")
        if resp.status_code not in (200, 202):
            raise RuntimeError(f"submit {ex.id}: {resp.status_code} {resp.get_json()}")
        ids.append(resp.get_json()["id"])
    tasks.make_worker(connection, (EXTRACTION,)).work(burst=True, logging_level="WARNING")
    doc_type = load_document_types(settings.schema_dir)["invoice"]
    counts = {"submitted": len(ids), "review": 0, "straight_through": 0, "approved": 0}
    with database.session() as session:
        user = session.get(User, user_id)
        for doc_id, ex in zip(ids, documents):
            doc = session.get(Document, doc_id)
            if doc.status != DONE or doc.route != REVIEW:
                counts["straight_through"] += 1
                continue
            counts["review"] += 1
            task = claim(session, doc_id, user, minutes=15)
            approve(session, doc_type, doc_id, user, version=task.version, attempt_id=doc.latest_extraction.id,
                    values={s.name: ex.labels.get(s.name) for s in doc_type.fields}, golden_share=settings.golden_share)
            counts["approved"] += 1
    app.extensions["docket.redis"].close()
    app.extensions["docket.db"].dispose()
    return counts


def run_demo(settings: Settings, cfg: DemoConfig, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(update={"eval_shared": cfg.eval_shared})  # the guard runs and warm-ups take
    db.upgrade(settings.database_uri)
    database = db.Database(settings.database_uri)
    connection = connect_redis(settings)
    tasks.init_runtime(settings)
    started = time.time()
    fresh = list(generate_invoices(cfg.fresh, FRESH_SEED, families=[cfg.family], keep_pdf=False))
    to_approve = list(generate_invoices(cfg.approve, APPROVE_SEED, families=[cfg.family]))

    before = accuracy_on(settings, database, fresh)
    print(f"before: {before['model']} {before['overall']:.1%} on {before['documents']} fresh documents", flush=True)
    warmup_minutes = idle_training_worker(connection) if cfg.warmup else None
    if warmup_minutes is not None:
        print(f"the idle training worker scored the served model's guard in {warmup_minutes} min", flush=True)
    counts = submit_and_approve(settings, database, connection, to_approve)
    print(f"approvals: {counts}", flush=True)

    with database.session() as session:
        run_id = request_run(session, connection, settings, "demo", dict(cfg.retrain)).id
    train_started = time.time()
    tasks.make_worker(connection, (TRAINING,)).work(burst=True, logging_level="WARNING")
    train_minutes = (time.time() - train_started) / 60
    with database.session() as session:
        run = session.get(TrainingRun, run_id)
        gate = (run.metrics or {}).get("gate", {})
        result_run = {"id": run.id, "status": run.status, "error": run.error, "version": run.output_model_version,
                      "decision": gate.get("decision"), "reasons": gate.get("reasons"), "guards": gate.get("guards"),
                      "golden": gate.get("overall"), "too_few_to_judge": gate.get("too_few_to_judge"),
                      "minutes": (run.metrics or {}).get("minutes"), "worker_minutes": round(train_minutes, 2),
                      "stage_minutes": (run.metrics or {}).get("stage_minutes"),
                      "log": run.log.splitlines()}
        active = registry.active_version(session)
        candidate = registry.get_version(session, run.output_model_version) if run.output_model_version else None
        candidate_dir = Path(candidate.path) if candidate and candidate.status != "active" else None
    tasks._WATCHES.clear()  # measure the served model now, not in two seconds
    after = accuracy_on(settings, database, fresh)
    print(f"after: {after['model']} {after['overall']:.1%}; run {result_run['decision']} in {result_run['minutes']} min", flush=True)
    # A rejected candidate is never served; measure it anyway, so the report says what the gate turned down.
    rejected = accuracy_on(settings, database, fresh, candidate_dir) if candidate_dir else None
    report = {
        "config": asdict(cfg),
        "before": before,
        "after": after,
        "rejected_candidate": rejected,
        "approvals": counts,
        "run": result_run,
        "guard_warmup_minutes": warmup_minutes,
        "active": active.version if active else None,
        "minutes": round((time.time() - started) / 60, 1),
        "passed": bool(after["overall"] is not None and after["overall"] >= 0.95 and result_run["decision"] == "promote"),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    database.dispose()
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=FRESH)
    parser.add_argument("--approve", type=int, default=APPROVE)
    parser.add_argument("--eval-shared", type=int, default=EVAL_SHARED)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "demo-learning")
    parser.add_argument("--train-layers", type=int, default=None, help="the run's train_layers (default: the run's own)")
    parser.add_argument("--approved-views", type=int, default=None, help="the run's approved_views (default: the run's own)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                        help="the run's training arithmetic (default: the run's own, auto)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="start the training worker only for the run, which then scores the served model's guard")
    args = parser.parse_args()
    os.environ.setdefault("DOCKET_VAR_DIR", str(args.out / "var"))
    get_settings.cache_clear()
    retrain = {key: value for key, value in (("train_layers", args.train_layers), ("approved_views", args.approved_views),
                                             ("precision", args.precision)) if value is not None}
    result = run_demo(get_settings(), DemoConfig(args.fresh, args.approve, args.eval_shared, retrain=retrain,
                                                 warmup=args.warmup), args.out)
    print(json.dumps({k: result[k] for k in ("before", "after", "run", "passed")}, indent=2, default=str))
