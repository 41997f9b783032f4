"""Build the default model from the PyPI base plus the adapter in the repository.

Idempotent and cached by content hash: the output folder's name is a hash of
the adapter files and the build recipe (``service.extract.artifacts``), so a
second run returns at once and a changed adapter builds a new folder.
Takes a few minutes on two cores the first time.

Usage: python -m training.build_default [--adapter DIR] [--out DIR] [--fp32]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from config.settings import get_settings
from service.extract.artifacts import DEFAULT_ADAPTER_DIR, default_model_dir, default_model_key
from service.extract.engine import read_meta
from training.base import BASE_ID, ensure_base
from training.export import META_FILE, export_onnx
from training.merge import merge_adapter


ADAPTER_SUBDIR = "adapter"  # a built model keeps the LoRA adapter it was merged from, to train on from there


def build_model(adapter_dir: Path, out_dir: Path, version: str, quantize: bool = True,
                base_dir: Path | None = None, calibrated: bool = True) -> Path:
    """Merge *adapter_dir* into the base (*base_dir*, default the SmolLM2 base) and export to *out_dir*.

    The adapter's ``calibration.json`` goes into the model's metadata unless
    *calibrated* is False: a model being calibrated must report raw scores.
    The adapter is copied into the folder too (``adapter/``): a retraining
    run continues from the adapter of the model it replaces.
    """
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if (out_dir / "model.onnx").exists() and (out_dir / META_FILE).exists():
        return out_dir
    base = Path(base_dir) if base_dir else ensure_base()
    calibration_file = adapter_dir / "calibration.json"
    extra = json.loads(calibration_file.read_text()) if calibrated and calibration_file.exists() else {}
    meta = {
        "version": version,
        "base_model": BASE_ID if base_dir is None else base.name,
        "adapter_sha256": _dir_hash(adapter_dir),
        "calibration": extra.get("calibration"),
        "thresholds": extra.get("thresholds"),
        "metrics": extra.get("metrics"),
    }
    with tempfile.TemporaryDirectory(prefix="docket-merge-") as tmp:
        merged = merge_adapter(adapter_dir, Path(tmp) / "merged", base)
        # Draft answers only from the real base: a test base of random weights answers noise.
        export_onnx(merged, out_dir, quantize=quantize, meta=meta, drafts=base_dir is None)
    shutil.copytree(adapter_dir, out_dir / ADAPTER_SUBDIR, dirs_exist_ok=True)
    return out_dir


def adapter_of(model_dir: Path) -> Path | None:
    """The LoRA adapter a built model was merged from, if it can be found.

    Its own copy, or, for a default model built before models carried one,
    the repository's default adapter when the hash recorded at build time
    matches it. None for models that came from no adapter (the tiny test model).
    """
    own = Path(model_dir) / ADAPTER_SUBDIR
    if (own / "adapter_model.safetensors").exists():
        return own
    recorded = read_meta(model_dir).get("adapter_sha256")
    if recorded and (DEFAULT_ADAPTER_DIR / "adapter_model.safetensors").exists() and recorded == _dir_hash(DEFAULT_ADAPTER_DIR):
        return DEFAULT_ADAPTER_DIR
    return None


def _dir_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def build_default(fp32: bool = False, out: Path | None = None) -> Path:
    """The default adapter's model, into the model cache unless *out* is given."""
    settings = get_settings()
    if not (DEFAULT_ADAPTER_DIR / "adapter_model.safetensors").exists():
        raise SystemExit(f"no adapter in {DEFAULT_ADAPTER_DIR}: run `docket train --bootstrap` first")
    if out is None:
        out = default_model_dir(settings)
        if fp32:
            out = out.with_name(out.name + "-fp32")
    return build_model(DEFAULT_ADAPTER_DIR, out, f"default-{default_model_key()}", quantize=not fp32)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--fp32", action="store_true")
    args = parser.parse_args()
    if args.adapter:
        out = args.out or Path(tempfile.mkdtemp(prefix="docket-model-"))
        print(build_model(args.adapter, out, f"adhoc-{_dir_hash(args.adapter)[:12]}", quantize=not args.fp32))
    else:
        print(build_default(fp32=args.fp32, out=args.out))
