"""LoRA fine-tuning on the tiny llama: bf16 autocast is chosen on purpose, recorded, and learns like fp32."""

from __future__ import annotations

import json

import pytest
import torch

from training.dataset import TrainExample
from training.finetune import TrainConfig, train, uses_bf16
from training.synth import generate_tickets


def test_precision_is_fp32_bf16_or_auto_and_auto_follows_the_chip():
    assert uses_bf16("fp32", "cpu") is False
    assert uses_bf16("bf16", "cpu") is True
    # "auto" autocasts only where bf16 is multiplied natively (AMX / AVX-512 BF16), as the kernel reports the
    # CPU's flags; emulated bf16 (oneDNN's on any AVX-512 CPU) is 2.6 times slower than fp32.
    flags = set(" ".join(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    assert uses_bf16("auto", "cpu") is bool(flags & {"amx_bf16", "amx_tile", "avx512_bf16"})
    with pytest.raises(ValueError, match="precision"):
        uses_bf16("fp16", "cpu")


def test_bf16_training_learns_as_fp32_training_does(tiny_base_dir, tmp_path):
    examples = [TrainExample(e.id, e.doc_type, e.text, e.target, None) for e in generate_tickets(3, 7)]
    losses: dict[str, list[float]] = {}
    recorded = {}
    for precision in ("fp32", "bf16"):
        losses[precision] = []
        out = train(examples, tmp_path / precision, TrainConfig(precision=precision, lr=1e-2, warmup_steps=1),
                    base_dir=tiny_base_dir, steps=9, progress=lambda step, total, loss, eta, p=precision: losses[p].append(loss))
        recorded[precision] = json.loads((out / "train_config.json").read_text())

    assert recorded["fp32"]["bf16"] is False and recorded["bf16"]["bf16"] is True
    assert recorded["bf16"]["precision"] == "bf16" and recorded["bf16"]["device"] == "cpu"
    for precision, run in losses.items():
        assert run[-1] < 0.9 * run[0], f"{precision} did not learn: {run}"
    # the same seed, data and schedule: the two runs' first losses agree to bf16 rounding
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=0.02)
    assert losses["bf16"] != losses["fp32"], "bf16 asked for, but the products ran in fp32"


def test_continuing_an_adapter_on_its_top_layers_keeps_the_lower_layers_as_they_were(tiny_base_dir, tmp_path):
    from safetensors.torch import load_file

    examples = [TrainExample(e.id, e.doc_type, e.text, e.target, None) for e in generate_tickets(3, 7)]
    first = train(examples, tmp_path / "first", TrainConfig(lr=1e-2, warmup_steps=1), base_dir=tiny_base_dir, steps=3)
    top = train(examples, tmp_path / "top", TrainConfig(lr=1e-2, warmup_steps=1, train_layers=1), base_dir=tiny_base_dir,
                steps=3, init_adapter=first)
    every = train(examples, tmp_path / "every", TrainConfig(lr=1e-2, warmup_steps=1), base_dir=tiny_base_dir, steps=3,
                  init_adapter=first)

    before, after_top, after_every = (load_file(d / "adapter_model.safetensors") for d in (first, top, every))
    lower = [k for k in before if ".layers.0." in k]
    upper = [k for k in before if ".layers.1." in k]
    assert lower and upper and set(lower) | set(upper) == set(before)  # the tiny llama has two layers
    assert all(torch.equal(before[k], after_top[k]) for k in lower)
    assert all(not torch.equal(before[k], after_top[k]) for k in upper if "lora_B" in k)
    assert any(not torch.equal(before[k], after_every[k]) for k in lower)
    assert json.loads((top / "train_config.json").read_text())["frozen_layers"] == 1
    assert json.loads((every / "train_config.json").read_text())["frozen_layers"] == 0
