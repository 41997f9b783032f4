"""Retrain from approved corrections: `docket train` (the rq job in ``training.jobs``).

    approved examples (not golden) + a replay sample of earlier training data
    → LoRA fine-tune (seeded), continuing the active model's adapter on the
      base (from a fresh adapter when it has none, or with warm_start off)
    → merge → ONNX → int8
    → confidence calibration on synthetic validation documents
    → evaluation of candidate and active model on the golden set
      and, as a guard, on the evaluation splits of ../shared/data
      (``settings.eval_shared`` documents each; the active model's are
      usually in the score cache: ``service.warmup``)
    → gate → register (and promote, or reject with the comparison)

Approved documents become examples in :mod:`training.approved`.

Continuing the active adapter is what lets a small run teach a new layout
without forgetting the old ones: a fresh adapter trained on a hundred or so
examples knows far less than the one it would replace, and the gate's guard
on ../shared/data would (rightly) reject it. It also trains at a lower
learning rate (``warm_lr``), for the same reason.

Nothing here touches the active model until the gate has passed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from service import registry
from service.doctypes import DocumentType, load_document_types
from service.evaluation import (
    DocumentRecord,
    Example,
    Report,
    clean_label,
    score_answer,
    score_document,
    select_examples,
    summarize,
)
from service.extract.artifacts import resolve_model_dir
from service.extract.engine import META_FILE, model_version_of, read_meta
from service.extract.vocabulary import TokenVocabulary
from service.models import ExtractionAttempt, ModelVersion, TrainingExample
from service.splits import split_of
from training import augment, score_cache, synth
from training.approved import load_approved
from training.base import BASE_ID, ensure_base
from training.bootstrap import BootstrapConfig
from training.build_default import adapter_of, build_model
from training.calibrate import calibrate
from training.dataset import (
    SHARED_DATA,
    TrainExample,
    bitext_examples,
    sample,
    sroie_examples,
)
from training.finetune import TrainConfig, encode_example, train, training_device
from training.gate import GateDecision, Scores, judge
from training.scoring_pool import Pending, ScoringPool

log = logging.getLogger(__name__)

ACTOR = "worker:training"


@dataclass
class RetrainConfig:
    seed: int = 1337
    replay: int = 100  # earlier training examples mixed in (settings.replay_examples)
    approved_repeats: int = 8  # each approved example is seen at most this many times (a new layout needs a few passes)
    approved_views: int | None = None  # ...and all of them together about this many (None: DEVICE_DEFAULTS): a run's length stays put as corrections grow
    row_views: bool = True  # repeats after the first show the table's rows in another order (training.augment)
    steps: int | None = None  # None: one pass over the mix
    lr: float = 1e-3  # a fresh adapter
    warm_start: bool = True  # continue the active model's adapter when it has one on the same base
    warm_lr: float = 3e-4  # continuing: gentler, so earlier layouts are kept
    train_layers: int | None = None  # continuing: only the adapter of the top N layers learns (0: all; None: DEVICE_DEFAULTS)
    warmup_steps: int = 20
    precision: str = "auto"  # training's matrix products: "auto" (bf16 where the chip has it natively), "fp32", "bf16"
    validation: int = 20  # synthetic documents for calibration (never trained on)
    eval_shared: int = 0  # documents per evaluation split of ../shared/data (0: skip; from_params: settings.eval_shared)
    quantize: bool = True
    base_dir: str | None = None  # None: the SmolLM2 base; tests pass a tiny llama folder
    max_new_tokens: int | None = None  # for evaluation; None: the settings' cap
    margin: float | None = None  # None: settings.gate_margin
    min_labelled: int | None = None  # None: settings.gate_min_labelled

    @classmethod
    def from_params(cls, params: dict[str, Any], settings: Settings) -> RetrainConfig:
        known = {k: v for k, v in params.items() if k in cls.__dataclass_fields__}
        known.setdefault("replay", settings.replay_examples)
        known.setdefault("eval_shared", settings.eval_shared)
        return cls(**known).resolved(training_device())

    def resolved(self, device: str) -> RetrainConfig:
        """This config with what it leaves open filled in for *device* ("cpu" or "cuda"): see DEVICE_DEFAULTS."""
        defaults = DEVICE_DEFAULTS["cuda" if device == "cuda" else "cpu"]
        return replace(self, **{name: value for name, value in defaults.items() if getattr(self, name) is None})


# What a run does where its caller does not say, by the device it trains on. On 2 CPU cores the
# 100-correction demonstration (README) reached 95.4% on the fresh documents with the top 20 layers
# and 300 views (349 steps, 18.9 minutes of training); every layer with 400 views reached 96.9% but
# trained for 25.5 (bf16, AMX) to about 36 (fp32) minutes, past the 30 a whole run may take there.
# A GPU has the time for every layer.
DEVICE_DEFAULTS = {
    "cpu": {"train_layers": 20, "approved_views": 300},
    "cuda": {"train_layers": 0, "approved_views": 400},
}


@dataclass
class Reporter:
    """Where a run reports to: progress (stage, step, total, loss, eta) and log lines."""

    progress: Callable[[dict[str, Any]], None] = lambda p: None
    log: Callable[[str], None] = lambda line: None
    losses: list[float] = field(default_factory=list)


@dataclass
class StageClock:
    """Minutes a run spends in each stage, for its metrics: where the time of a run goes."""

    minutes: dict[str, float] = field(default_factory=dict)
    _stage: str | None = None
    _since: float = 0.0

    def enter(self, stage: str | None) -> None:
        now = time.time()
        if self._stage:
            self.minutes[self._stage] = round(self.minutes.get(self._stage, 0.0) + (now - self._since) / 60, 2)
        self._stage, self._since = stage, now


@dataclass
class Outcome:
    version: str
    model_dir: Path
    decision: GateDecision
    metrics: dict[str, Any]


# --- data --------------------------------------------------------------------


def replay_sample(n: int, seed: int) -> list[TrainExample]:
    """*n* examples of the earlier (bootstrap) training data: same generators, same seeds, same bytes."""
    if n <= 0:
        return []
    boot = BootstrapConfig()
    shares = {"invoices": 0.4, "receipts": 0.1, "tickets": 0.2, "sroie": 0.15, "bitext": 0.15}
    counts = {k: int(n * v) for k, v in shares.items()}
    counts["invoices"] += n - sum(counts.values())
    out: list[TrainExample] = []
    for gen in (
        synth.generate_invoices(counts["invoices"], boot.seed, keep_pdf=False),
        synth.generate_receipts(counts["receipts"], boot.seed + 1),
        synth.generate_tickets(counts["tickets"], boot.seed + 2),
    ):
        out += [TrainExample(e.id, e.doc_type, e.text, e.target, None) for e in gen]
    if counts["sroie"]:
        out += sample(list(sroie_examples("train")), counts["sroie"], seed)
    if counts["bitext"]:
        out += sample(list(bitext_examples("train")), counts["bitext"], seed + 1)
    return out


def repeats_per_example(approved: int, views: int, most: int) -> int:
    """How often each approved example is shown: *most* times while they are few, fewer as they grow.

    A run trains one step per example shown, so its time follows the number of
    views, not the number of corrections: 40 corrections are shown 8 times
    each, 100 of them 4 times, 400 or more once.
    """
    return max(1, min(most, views // max(1, approved)))


def starting_adapter(model_dir: Path, base_name: str) -> Path | None:
    """The adapter to continue: the active model's, if it was trained on the base this run trains on."""
    if read_meta(model_dir).get("base_model") != base_name:
        return None
    return adapter_of(model_dir)


def data_hash(examples: list[TrainExample], cfg: RetrainConfig, init_adapter: Path | None = None) -> str:
    digest = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True, default=str).encode())
    if init_adapter:
        digest.update(hashlib.sha256((Path(init_adapter) / "adapter_model.safetensors").read_bytes()).digest())
    for e in sorted(examples, key=lambda e: e.id):
        digest.update(json.dumps([e.id, e.doc_type, e.text, e.target, sorted(e.labelled or [])],
                                 sort_keys=True, ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def encodable(examples: list[TrainExample], base_dir: Path, doc_types: dict[str, DocumentType],
              cfg: TrainConfig, report: Reporter) -> list[TrainExample]:
    """The examples the training format accepts; each one left out is logged with its reason."""
    vocab = TokenVocabulary.from_file(Path(base_dir) / "tokenizer.json")
    indexes: dict = {}
    kept = []
    for e in examples:
        try:
            encode_example(e, doc_types, vocab, indexes, cfg)
        except (ValueError, KeyError) as exc:
            report.log(f"left out {e.id}: {exc}")
            continue
        kept.append(e)
    return kept


# --- evaluation --------------------------------------------------------------


def golden_examples(rows: list[TrainingExample], doc_types: dict[str, DocumentType]) -> dict[str, list[Example]]:
    by_type: dict[str, list[Example]] = {}
    for r in rows:
        doc_type = doc_types[r.doc_type]
        labels = {}
        for spec in doc_type.fields:
            value = clean_label(spec, r.values.get(spec.name))
            if value is not None:
                labels[spec.name] = value
        by_type.setdefault(r.doc_type, []).append(Example(f"golden-{r.id}", r.text, labels))
    return by_type


def scored(doc_type: DocumentType, example: Example, extract, apply_rules: bool = True) -> DocumentRecord:
    """Score one document; an extractor error counts as an answer of nulls, as in ``docket eval``."""
    return score_answer(doc_type, example, lambda: extract(doc_type.name, example.source), apply_rules)


def served_records(session: Session, rows: list[TrainingExample], golden: dict[str, list[Example]],
                   version: str, doc_types: dict[str, DocumentType]) -> dict[str, list[DocumentRecord]]:
    """The active model's golden-set records from the answers it gave in service, by document type.

    Every golden document was extracted when it was submitted, usually by the
    model still active: asking that model again spends minutes of a run on an
    answer the database holds. Its latest answer on the document is scored
    instead (rules already applied, as in service); the run extracts only the
    golden documents it never read.
    """
    ids = {r.document_id: f"golden-{r.id}" for r in rows if r.document_id}
    attempts = session.scalars(
        select(ExtractionAttempt)
        .where(ExtractionAttempt.document_id.in_(list(ids)), ExtractionAttempt.engine == "model",
               ExtractionAttempt.model_version == version)
        .order_by(ExtractionAttempt.id)
    )
    answers = {ids[a.document_id]: {"fields": a.fields, "model_version": a.model_version, "warnings": a.warnings}
               for a in attempts}
    return {name: [score_document(doc_types[name], e, answers[e.id], apply_rules=False) for e in examples if e.id in answers]
            for name, examples in golden.items()}


def submit_golden(pool: ScoringPool, model_dir: Path, golden: dict[str, list[Example]],
                  doc_types: dict[str, DocumentType], known: dict[str, list[DocumentRecord]] | None = None) -> list[Pending]:
    """The golden documents of each type for *model_dir*, except those *known* already holds records of."""
    done = {r.id for records in (known or {}).values() for r in records}
    return [pool.submit(model_dir, doc_types[name], [e for e in examples if e.id not in done])
            for name, examples in golden.items()]


def collect_golden(pool: ScoringPool, pending: list[Pending], known: dict[str, list[DocumentRecord]] | None = None) -> list[Report]:
    """One report per document type, of the records *known* and those scored now."""
    return [summarize((known or {}).get(p.doc_type.name, []) + pool.records(p)) for p in pending]


SHARED_EVAL = {"sroie": SHARED_DATA / "sroie" / "normalized.jsonl", "bitext": SHARED_DATA / "bitext" / "normalized.jsonl"}


def submit_shared(pool: ScoringPool, model_dir: Path, limit: int, report: Reporter) -> dict[str, Any]:
    """The first *limit* documents of each evaluation split of ../shared/data, submitted for *model_dir*.

    A report this model already got from this code, settings and data is read
    back from var/score-cache instead of scored again (``training.score_cache``).
    Each entry is that report, or its cache key and the documents in flight.
    """
    settings = pool.engine_settings
    scorer = score_cache.scorer_digest(model_dir, settings)
    out: dict[str, Any] = {}
    for name, path in SHARED_EVAL.items():
        if not path.exists():
            continue
        key = score_cache.cache_key(scorer, path, limit)
        known = score_cache.read(settings.var_dir / "score-cache", key)
        if known is not None:
            report.log(f"{name}: {model_version_of(model_dir)}'s scores on these {limit} documents read from the score cache")
            out[name] = known
            continue
        doc_type, examples = select_examples(path, limit=limit, include=lambda e: split_of(e.dataset, e.id) == "eval")
        out[name] = (key, pool.submit(model_dir, doc_type, examples))
    return out


def collect_shared(pool: ScoringPool, submitted: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Reports (as dicts) of what :func:`submit_shared` submitted; each new one is stored in the score cache."""
    out = {}
    for name, entry in submitted.items():
        if isinstance(entry, dict):
            out[name] = entry
            continue
        key, pending = entry
        out[name] = summarize(pool.records(pending)).to_dict()
        score_cache.store(pool.engine_settings.var_dir / "score-cache", key, out[name])
    return out


def evaluate_shared(pool: ScoringPool, model_dir: Path, limit: int, report: Reporter) -> dict[str, dict[str, Any]]:
    """Reports (as dicts) of *model_dir* on the first *limit* documents of each evaluation split of ../shared/data."""
    return collect_shared(pool, submit_shared(pool, model_dir, limit, report))


def served_model_dir(session: Session, settings: Settings) -> Path:
    """The folder of the model served now: the registry's active version, or the settings' model without one."""
    active = registry.active_version(session)
    return Path(active.path) if active else resolve_model_dir(settings)


def engine_settings(settings: Settings, cfg: RetrainConfig) -> Settings:
    """The settings a run extracts with: the service's, with the run's token cap."""
    return settings.model_copy(update={"max_new_tokens": cfg.max_new_tokens}) if cfg.max_new_tokens else settings


def submit_calibration(pool: ScoringPool, model_dir: Path, cfg: RetrainConfig,
                       doc_types: dict[str, DocumentType]) -> list[Pending]:
    """Fresh synthetic invoices and tickets (never trained on), submitted for the candidate."""
    by_type: dict[str, list[Example]] = {}
    for gen in (synth.generate_invoices(cfg.validation, cfg.seed + 2000, keep_pdf=False),
                synth.generate_tickets(max(1, cfg.validation // 2), cfg.seed + 2001)):
        for e in gen:
            doc_type = doc_types[e.doc_type]
            labels = {s.name: v for s in doc_type.fields if (v := clean_label(s, e.labels.get(s.name))) is not None}
            by_type.setdefault(e.doc_type, []).append(Example(e.id, e.text, labels))
    return submit_golden(pool, model_dir, by_type, doc_types)


def _calibrate(pool: ScoringPool, pending: list[Pending], model_dir: Path, report: Reporter) -> dict[str, Any]:
    """Fit calibration and thresholds on the scored calibration documents; write them into the model's metadata."""
    outcomes = [o for p in pending for record in pool.records(p, apply_rules=False) for o in record.outcomes]
    result = calibrate(outcomes)
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text())
    meta.update(calibration=result["calibration"], thresholds=result["thresholds"], validation=result["validation"])
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True))
    report.log(f"calibrated on {sum(len(p.examples) for p in pending)} synthetic documents: "
               f"accuracy {result['validation']['accuracy']:.2%}")
    return result


# --- the run -----------------------------------------------------------------


def retrain(session: Session, settings: Settings, run_id: int, cfg: RetrainConfig, report: Reporter,
            work_dir: Path | None = None) -> Outcome:
    """Train, build, calibrate, evaluate, gate and register a new version. Promotes only if the gate passes."""
    started = time.time()
    cfg = cfg.resolved(training_device())
    doc_types = load_document_types(settings.schema_dir)
    base_dir = Path(cfg.base_dir) if cfg.base_dir else None
    base_name = BASE_ID if not cfg.base_dir else Path(cfg.base_dir).name
    serving = registry.active_version(session)  # what the run starts from (the gate re-reads it at the end)
    serving_dir = served_model_dir(session, settings)
    init_adapter = starting_adapter(serving_dir, base_name) if cfg.warm_start else None
    train_cfg = TrainConfig(seed=cfg.seed, lr=cfg.warm_lr if init_adapter else cfg.lr, warmup_steps=cfg.warmup_steps,
                            train_layers=cfg.train_layers if init_adapter else 0, precision=cfg.precision)

    clock = StageClock()
    clock.enter("data")
    report.progress({"stage": "data"})
    approved, golden_rows = load_approved(session, doc_types)
    session.commit()  # end the read transaction: the run holds no transaction open while it trains
    report.log(f"{len(approved)} approved examples to train on, {len(golden_rows)} golden examples held back")
    replay = replay_sample(cfg.replay, cfg.seed)
    report.log(f"{len(replay)} replay examples of earlier training data")
    if not approved:
        raise ValueError("no approved examples to train on: approve documents in review first")
    base_dir = base_dir or ensure_base()
    times = repeats_per_example(len(approved), cfg.approved_views, cfg.approved_repeats)
    report.log(f"each approved example is shown {times} times")
    if cfg.row_views:
        shown = [view for ex in approved for view in augment.repeats(doc_types, ex, times, cfg.seed)]
    else:
        shown = approved * times
    mix = encodable(shown + replay, base_dir, doc_types, train_cfg, report)
    random.Random(cfg.seed).shuffle(mix)
    digest = data_hash(mix, cfg, init_adapter)
    version = f"r{run_id}-{digest[:10]}"
    out = Path(work_dir or settings.var_dir / "training" / f"run-{run_id}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    def on_step(step: int, total: int, loss: float, eta: float) -> None:
        report.losses.append(round(loss, 5))
        report.progress({"stage": "train", "step": step, "total": total, "loss": round(loss, 5), "eta_s": round(eta)})

    start = f"continuing the adapter of {serving.version if serving else serving_dir.name}" if init_adapter else "a fresh adapter"
    report.log(f"training on {len(mix)} examples from {base_dir}: {start}, lr {train_cfg.lr:g}")
    clock.enter("train")
    adapter = train(mix, out / "adapter", train_cfg, base_dir=base_dir, steps=cfg.steps, progress=on_step,
                    init_adapter=init_adapter)
    frozen = json.loads((adapter / "train_config.json").read_text())["frozen_layers"]
    if frozen:
        report.log(f"the adapter's layers 0 to {frozen - 1} were kept as they were; the layers above them learned")

    clock.enter("build")
    report.progress({"stage": "build"})
    model_dir = settings.var_dir / "models" / version
    build_model(adapter, model_dir, version, quantize=cfg.quantize, base_dir=base_dir if cfg.base_dir else None)
    report.log(f"built {version} in {model_dir}")

    clock.enter("calibrate")  # with the active model's scoring beside it
    report.progress({"stage": "calibrate"})
    golden = golden_examples(golden_rows, doc_types)
    active_dir = served_model_dir(session, settings)
    active_version = model_version_of(active_dir)  # None: there is no model to compare with
    has_active = active_version is not None
    guard = cfg.eval_shared if has_active else 0
    with ScoringPool(engine_settings(settings, cfg)) as pool:
        calibrating = submit_calibration(pool, model_dir, cfg, doc_types)
        # The active model's documents go in beside the calibration's: no core waits for the calibration to end.
        served = served_records(session, golden_rows, golden, active_version, doc_types) if has_active else {}
        act_golden = submit_golden(pool, active_dir, golden, doc_types, served) if has_active else []
        act_shared = submit_shared(pool, active_dir, guard, report) if guard else {}
        calibration = _calibrate(pool, calibrating, model_dir, report)

        clock.enter("evaluate")
        report.progress({"stage": "evaluate"})  # the candidate, with the calibration it now carries
        cand_golden = submit_golden(pool, model_dir, golden, doc_types)
        cand_shared = submit_shared(pool, model_dir, guard, report) if guard else {}
        act_scores = Scores.from_reports(collect_golden(pool, act_golden, served)) if has_active else None
        act_shared = collect_shared(pool, act_shared)
        cand_reports = collect_golden(pool, cand_golden)
        cand_shared = collect_shared(pool, cand_shared)
    reused = sum(len(records) for records in served.values())
    report.log(f"scored on {pool.workers} worker process{'es' if pool.workers > 1 else ''}; the active model's answers"
               f" on {reused} of {sum(map(len, golden.values()))} golden documents were the ones it gave in service")
    clock.enter(None)
    cand_scores = Scores.from_reports(cand_reports)
    guards, shared = {}, {}
    for name in cand_shared:
        guards[f"shared:{name}"] = (Scores.from_report_dict(cand_shared[name]), Scores.from_report_dict(act_shared[name]))
        shared[name] = {"candidate": cand_shared[name], "active": act_shared[name]}
    margin = cfg.margin if cfg.margin is not None else settings.gate_margin
    min_labelled = cfg.min_labelled if cfg.min_labelled is not None else settings.gate_min_labelled
    decision = judge(cand_scores, act_scores, margin, guards, min_labelled)
    report.log(f"gate: {'promote' if decision.promote else 'reject'} " + "; ".join(decision.reasons))

    metrics = {
        "golden": {r.doc_type: r.to_dict() for r in cand_reports},
        "shared_eval": shared,
        "validation": calibration["validation"],
        "train": {"examples": len(mix), "approved": len(approved), "repeats": times, "replay": len(replay),
                  "final_loss": report.losses[-1] if report.losses else None,
                  "started_from": str(init_adapter) if init_adapter else None, "lr": train_cfg.lr,
                  "frozen_layers": frozen},
        "minutes": round((time.time() - started) / 60, 2),
        "stage_minutes": clock.minutes,
    }
    if "invoice" in metrics["golden"]:
        metrics.update(metrics["golden"]["invoice"])  # the engineers' page reads one report at the top level
    parent = ensure_baseline(session, active_dir, doc_types) if has_active else None
    entry = registry.register(
        session, version=version, path=model_dir, actor=ACTOR, parent=parent, data_hash=digest,
        base_model=base_name, metrics=metrics,
        doc_types=sorted({e.doc_type for e in mix}), training_run_id=run_id,
    )
    session.commit()
    if decision.promote:
        registry.promote(session, entry.version, ACTOR, reason=f"training run {run_id} passed the gate",
                         gate=decision.to_dict())
    else:
        registry.reject(session, entry.version, ACTOR, decision.to_dict())
    return Outcome(version, model_dir, decision, metrics)


def ensure_baseline(session: Session, model_dir: Path, doc_types: dict[str, DocumentType]) -> str:
    """The version id of the model served now, registering the default model if the registry has none."""
    active = registry.active_version(session)
    if active is not None:
        return active.version
    version = model_version_of(model_dir)
    existing = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    if existing is None:
        registry.register(session, version=version, path=model_dir, actor=ACTOR,
                          base_model=read_meta(model_dir).get("base_model", ""), metrics={},
                          doc_types=sorted(doc_types))
        session.commit()
    registry.promote(session, version, ACTOR, reason="baseline: the model served before the registry had one")
    return version
