"""Reproduce the default model's adapter from scratch: `docket train --bootstrap`.

    synthetic invoices, receipts and tickets  ┐
    + training split of ../shared/data        ┴→ LoRA fine-tune (seeded)
    → merge → ONNX int8 → calibrate on a validation split → adapter + calibration.json

The validation split is made of documents the run does not train on (further
synthetic documents, and training-split documents left out of the sample);
the evaluation split of ../shared/data is never touched here.

A refresh (``--refresh ADAPTER``) continues an earlier bootstrap adapter on
a smaller sample of the current mix at a gentler learning rate
(:data:`REFRESH`): how a change to the training data reaches the default
model in minutes rather than the hour and a half a run from scratch takes.
The adapter's ``train_config.json`` records what it continued.

A recalibration (``--recalibrate ADAPTER``) refits an adapter's calibration
in place: decoding changes move the confidences the calibration maps.

Usage: python -m training.bootstrap [--out artifacts/bootstrap] [--refresh ADAPTER | --recalibrate ADAPTER] [--install]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from config.settings import ROOT, Settings, get_settings
from service.extract.artifacts import DEFAULT_ADAPTER_DIR
from service.extract.engine import Engine
from service.splits import split_of
from training import synth
from training.build_default import build_model
from training.calibrate import calibrate, collect_outcomes, extractor
from training.dataset import SHARED_DATA, TrainExample, bitext_examples, has_tagged_entity, sroie_examples
from training.finetune import TrainConfig, train


@dataclass
class BootstrapConfig:
    """The mix is weighted by what is hard: invoices and receipts (long, many
    fields, most of the errors) over tickets, which the model already reads
    well. Synthetic receipts label every field, nulls included, which is how
    the model learns that a receipt has no due date; SROIE labels only four.
    """

    seed: int = 1337
    synthetic_invoices: int = 240
    synthetic_receipts: int = 120
    synthetic_tickets: int = 100
    sroie: int = 160
    bitext_with_entity: int = 200
    bitext_plain: int = 120
    validation_synthetic: int = 30
    validation_shared: int = 60
    epochs: float = 2.0
    focus_families: tuple[str, ...] = ()  # layout families new to the adapter a refresh continues
    focus_invoices: int = 0               # further invoices drawn from those families alone


# A refresh samples a fraction of the mix, weighted towards what changed
# since the adapter it continues: invoices (label wordings, long ids) and the
# layout that prints the vendor only at the page's foot.
REFRESH = BootstrapConfig(synthetic_invoices=100, synthetic_receipts=40, synthetic_tickets=30, sroie=60,
                          bitext_with_entity=60, bitext_plain=40, epochs=1.0,
                          focus_families=("vendor_in_footer",), focus_invoices=24)
REFRESH_LR = 3e-4


def _synthetic(cfg: BootstrapConfig, seed: int, invoices: int, receipts: int, tickets: int) -> list[dict]:
    rows = []
    focus = synth.generate_invoices(cfg.focus_invoices, seed + 3, families=cfg.focus_families) if cfg.focus_invoices else ()
    for gen in (
        synth.generate_invoices(invoices, seed),
        focus,
        synth.generate_receipts(receipts, seed + 1),
        synth.generate_tickets(tickets, seed + 2),
    ):
        for ex in gen:
            rows.append({"id": ex.id, "doc_type": ex.doc_type, "text": ex.text, "target": ex.target, "labels": ex.labels})
    return rows


def _validation(cfg: BootstrapConfig) -> list[dict]:
    return _synthetic(cfg, cfg.seed + 1000, cfg.validation_synthetic, cfg.validation_synthetic // 3, cfg.validation_synthetic)


def _write_validation(validation: list[dict], out_dir: Path) -> Path:
    path = out_dir / "validation-synthetic.jsonl"
    with path.open("w") as f:
        for r in validation:
            f.write(json.dumps({"id": r["id"], "doc_type": r["doc_type"], "text": r["text"], **r["labels"]}, ensure_ascii=False) + "\n")
    return path


def compose(cfg: BootstrapConfig) -> tuple[list[TrainExample], list[dict]]:
    """Training examples and the synthetic validation rows (in normalized.jsonl form)."""
    rng = random.Random(cfg.seed)
    examples = [TrainExample(r["id"], r["doc_type"], r["text"], r["target"], None) for r in _synthetic(cfg, cfg.seed, cfg.synthetic_invoices, cfg.synthetic_receipts, cfg.synthetic_tickets)]
    examples += _shared_examples(cfg, rng)
    rng.shuffle(examples)
    return examples, _validation(cfg)


def _shared_examples(cfg: BootstrapConfig, rng: random.Random) -> list[TrainExample]:
    """The sample of ../shared/data's training split; a smaller mix with the
    same seed draws a subset of a larger one's."""
    sroie = list(sroie_examples("train"))
    rng.shuffle(sroie)
    bitext = list(bitext_examples("train"))
    rng.shuffle(bitext)
    tagged = [b for b in bitext if has_tagged_entity(b)]
    plain = [b for b in bitext if not has_tagged_entity(b)]
    return sroie[: cfg.sroie] + tagged[: cfg.bitext_with_entity] + plain[: cfg.bitext_plain]


def _trained_ids(examples: list[TrainExample], cfg: BootstrapConfig, refreshing: bool) -> set[str]:
    """Documents the adapter has seen: a refresh also holds back what the full
    bootstrap it continues trained on, so calibration never sees them."""
    ids = {e.id for e in examples}
    if refreshing:
        ids |= {e.id for e in _shared_examples(BootstrapConfig(seed=cfg.seed), random.Random(cfg.seed))}
    return ids


def run(out_dir: Path, cfg: BootstrapConfig, install: bool = False, train_cfg: TrainConfig | None = None,
        init_adapter: Path | None = None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    examples, validation = compose(cfg)
    with (out_dir / "examples.jsonl").open("w") as f:
        for e in examples:
            f.write(json.dumps({"id": e.id, "doc_type": e.doc_type, "text": e.text, "target": e.target, "labelled": sorted(e.labelled) if e.labelled is not None else None}, ensure_ascii=False) + "\n")
    valid_path = _write_validation(validation, out_dir)
    print(f"{len(examples)} training examples, {len(validation)} synthetic validation documents", flush=True)

    # fp32: the shipped adapter was trained so, and a bootstrap reproduces it.
    train_cfg = train_cfg or TrainConfig(seed=cfg.seed, epochs=cfg.epochs, lr=REFRESH_LR if init_adapter else TrainConfig.lr,
                                         precision="fp32")
    adapter = train(examples, out_dir / "adapter", train_cfg, init_adapter=init_adapter)
    model_dir = build_model(adapter, out_dir / "model-uncalibrated", "bootstrap-uncalibrated", calibrated=False)

    trained = _trained_ids(examples, cfg, refreshing=init_adapter is not None)
    result = calibrate_model(model_dir, valid_path, trained, cfg.validation_shared)
    result["bootstrap"] = {**asdict(cfg), "minutes": round((time.time() - started) / 60, 1)}
    (adapter / "calibration.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    print(json.dumps(result["validation"]), flush=True)
    if install:
        DEFAULT_ADAPTER_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("adapter_config.json", "adapter_model.safetensors", "calibration.json", "train_config.json"):
            shutil.copy(adapter / name, DEFAULT_ADAPTER_DIR / name)
    return adapter


def calibrate_model(model_dir: Path, valid_path: Path, trained: set[str], limit: int) -> dict:
    """Fit the confidence calibration and per-field thresholds of *model_dir*
    on the synthetic validation rows and on training-split documents of
    ../shared/data that are not in *trained*."""
    settings = get_settings()
    engine = Engine(model_dir, Settings(**{**settings.model_dump(), "model_dir": model_dir}))

    def held_back(dataset: str):
        def include(e) -> bool:
            prefixed = f"sroie-{e.id}" if dataset == "sroie" else e.id
            return split_of(dataset, e.id) == "train" and prefixed not in trained
        return include

    outcomes = collect_outcomes(
        extractor(engine),
        [
            (valid_path, None),
            (SHARED_DATA / "sroie" / "normalized.jsonl", held_back("sroie")),
            (SHARED_DATA / "bitext" / "normalized.jsonl", held_back("bitext")),
        ],
        limit=limit,
    )
    return calibrate(outcomes)


def recalibrate(adapter: Path, out_dir: Path) -> dict:
    """Refit *adapter*'s calibration on the validation split of the mix it
    records, without training: what a change to decoding (which moves the
    confidences) needs. Everything any bootstrap mix trained on stays out."""
    adapter, out_dir = Path(adapter), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = json.loads((adapter / "calibration.json").read_text())
    recorded = previous.get("bootstrap", {})
    cfg = BootstrapConfig(**{k: v for k, v in recorded.items() if k in BootstrapConfig.__dataclass_fields__})
    valid_path = _write_validation(_validation(cfg), out_dir)
    model_dir = build_model(adapter, out_dir / "model-uncalibrated", "bootstrap-uncalibrated", calibrated=False)
    result = calibrate_model(model_dir, valid_path, _trained_ids([], cfg, refreshing=True), cfg.validation_shared)
    result["bootstrap"] = {**recorded, "recalibrated": time.strftime("%Y-%m-%d")}
    (adapter / "calibration.json").write_text(json.dumps(result, indent=2, sort_keys=True))
    print(json.dumps({"before": previous.get("validation"), "after": result["validation"]}), flush=True)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "bootstrap")
    parser.add_argument("--refresh", type=Path, metavar="ADAPTER", help="continue this adapter on the refresh mix")
    parser.add_argument("--install", action="store_true", help="copy the adapter into training/adapters/default")
    parser.add_argument("--recalibrate", type=Path, metavar="ADAPTER", help="refit this adapter's calibration in place, no training")
    args = parser.parse_args()
    if args.recalibrate:
        recalibrate(args.recalibrate, args.out)
    else:
        cfg = REFRESH if args.refresh else BootstrapConfig()
        print(run(args.out, cfg, install=args.install, init_adapter=args.refresh))
