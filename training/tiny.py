"""A tiny llama with the real tokenizer and random weights, exported like the real model.

Tests use it to exercise the whole serving path (onnxruntime session, KV
cache, outlines-core index, jump-forward, speculation, API, workers) in
seconds. Its answers are schema-valid nonsense, which is what a decoder test
wants: nothing it outputs can come from having learned the answer.

Usage: python -m training.tiny OUT_DIR
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from training.base import ensure_base  # noqa: E402
from training.export import META_FILE, export_onnx  # noqa: E402

TINY_RECIPE = "tiny-llama-v1: hidden 64, 2 layers, 4 heads / 2 kv heads, seed 0"


def save_tiny_hf(dest: Path, seed: int = 0) -> Path:
    """Save the tiny llama and the real tokenizer as a Hugging Face folder (a base model for LoRA tests)."""
    dest = Path(dest)
    if (dest / "model.safetensors").exists() and (dest / "tokenizer.json").exists():
        return dest
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    base = ensure_base()
    tokenizer = AutoTokenizer.from_pretrained(base)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=100000.0,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # Larger logits than the default init, so greedy choices are far from ties.
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(50.0)
    staging = dest.with_name(dest.name + f".{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return dest


def build_tiny_model(dest: Path, seed: int = 0) -> Path:
    """Build once into *dest* (a folder with model.onnx, tokenizer.json, docket-model.json)."""
    dest = Path(dest)
    if (dest / "model.onnx").exists() and (dest / META_FILE).exists():
        return dest
    staging = save_tiny_hf(dest.with_name(dest.name + ".hf"), seed)
    version = "tiny-" + hashlib.sha256(f"{TINY_RECIPE}:{seed}".encode()).hexdigest()[:10]
    export_onnx(staging, dest, quantize=False, meta={"version": version, "base_model": "tiny-random-llama", "recipe": TINY_RECIPE},
                drafts=False)
    shutil.rmtree(staging, ignore_errors=True)
    return dest


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    print(build_tiny_model(parser.parse_args().out_dir))
