"""LoRA fine-tuning of the base model on Docket's prompt/target format.

Loss only on the target tokens the source labels; batch 1 (sequences differ a
lot in length and padding costs CPU time); AdamW with warm-up and cosine decay.
Seeded end to end. On a GPU when one is present; matrix products in bfloat16
(autocast, weights and optimizer state stay fp32) where the chip multiplies
bf16 natively: about twice as fast on a CPU with AMX as fp32. The adapter is saved in fp16 (it is what the repository
carries) together with the config that made it.

Usage: python -m training.finetune --data examples.jsonl --out DIR [--steps N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from outlines_core import Index  # noqa: E402
from outlines_core.json_schema import build_regex_from_schema  # noqa: E402

from config.settings import get_settings  # noqa: E402
from service.doctypes import load_document_types  # noqa: E402
from service.extract.prompt import build_prompt, fit_to_budget, render_target, tokenize_target  # noqa: E402
from service.extract.vocabulary import TokenVocabulary  # noqa: E402
from training.base import ensure_base  # noqa: E402
from training.dataset import TrainExample  # noqa: E402


@dataclass
class TrainConfig:
    seed: int = 1337
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lr: float = 1e-3
    warmup_steps: int = 20
    epochs: float = 1.0
    max_prompt_tokens: int = 1024
    threads: int = 2
    log_every: int = 10
    precision: str = "auto"  # "auto": bf16 autocast where the chip multiplies bf16 natively; "fp32"; "bf16"
    train_layers: int = 0  # only the adapter weights of the top N transformer layers learn (0: every layer)


def encode_example(ex: TrainExample, doc_types, vocab: TokenVocabulary, indexes: dict, cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """Token ids and labels (-100 where no loss) for one example."""
    doc_type = doc_types[ex.doc_type]
    fitted = fit_to_budget(ex.text.split("\f"), lambda t: len(vocab.encode(t)), cfg.max_prompt_tokens)
    prompt_ids = vocab.encode(build_prompt(doc_type, fitted.text))
    target_text, masked = render_target(doc_type, ex.target, ex.labelled)
    if ex.doc_type not in indexes:
        indexes[ex.doc_type] = Index(build_regex_from_schema(doc_type.decode_schema_json, ""), vocab.outlines_vocabulary())
    target_ids = tokenize_target(target_text, vocab, indexes[ex.doc_type])
    labels, pos = [], 0
    masked_bytes = [(len(target_text[:a].encode()), len(target_text[:b].encode())) for a, b in masked]
    for tok in target_ids:
        end = pos + len(vocab.token_bytes[tok])
        hidden = any(pos < b and end > a for a, b in masked_bytes)
        labels.append(-100 if hidden else tok)
        pos = end
    end_id = vocab.eos_id
    ids = prompt_ids + target_ids + [end_id]
    return ids, [-100] * len(prompt_ids) + labels + [end_id]


def _schedule(n: int, total: int, seed: int) -> list[int]:
    """*total* example indices: passes over all *n*, each in its own seeded order,
    so a second epoch does not replay the first one's sequence of updates."""
    schedule: list[int] = []
    rng = random.Random(seed)
    while len(schedule) < total:
        order = list(range(n))
        rng.shuffle(order)
        schedule += order
    return schedule[:total]


def target_loss(peft_model, ids: list[int], labels: list[int]):
    """Cross-entropy over the labelled positions only.

    The LM head maps 576 → 49,152 per position; applying it to every prompt
    position costs more than the rest of the backward pass, so it runs only
    where a label is.
    """
    import torch
    import torch.nn.functional as F

    base = peft_model.get_base_model()
    device = base.lm_head.weight.device
    hidden = base.model(input_ids=torch.tensor([ids], device=device)).last_hidden_state[0]
    # position p predicts token p + 1
    positions = [p for p in range(len(ids) - 1) if labels[p + 1] != -100]
    targets = torch.tensor([labels[p + 1] for p in positions], device=device)
    logits = base.lm_head(hidden[positions])
    return F.cross_entropy(logits.float(), targets)


def training_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def uses_bf16(precision: str, device: str) -> bool:
    """Whether to autocast to bfloat16: asked for, or "auto" on a chip with native bf16 matrix units.

    On a CPU without them (no AMX or AVX-512 BF16) bf16 is emulated and slower than fp32.
    """
    import torch

    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return native_cpu_bf16()


def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX or AVX-512 BF16).

    Not oneDNN's ``_is_mkldnn_bf16_supported()``: that is true on any AVX-512
    CPU, where bf16 is emulated: on an Intel Xeon with AVX-512 but neither, a
    step under bf16 autocast took 2.6 times its fp32 time (13.3 s against
    5.1 s; ``python -m benchmarks.training_step --settings fp32:0 bf16:0``).
    """
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(check() for check in checks if check is not None)


_LAYER = re.compile(r"\.layers\.(\d+)\.")


def freeze_lower_layers(model, train_layers: int) -> int:
    """Stop the adapter weights below the top *train_layers* layers from learning; returns how many layers that is.

    Why: nothing below the lowest trained layer needs a gradient, so the
    backward pass stops there: on a CPU a step on the top 8 of SmolLM2's 30
    layers took 2.4 s against 4.6 s for all of them (770 tokens). The price is
    what can be learned: continuing on the top 10 took a new table layout's
    line items to 18% where every layer reached 82%.
    """
    layers = model.config.num_hidden_layers
    if train_layers <= 0 or train_layers >= layers:
        return 0
    lowest = layers - train_layers
    for name, param in model.named_parameters():
        match = _LAYER.search(name)
        if "lora_" in name and match and int(match.group(1)) < lowest:
            param.requires_grad_(False)
    return lowest


def load_examples(path: Path) -> list[TrainExample]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [TrainExample(r["id"], r["doc_type"], r["text"], r["target"], set(r["labelled"]) if r.get("labelled") is not None else None) for r in rows]


def train(examples: list[TrainExample], out_dir: Path, cfg: TrainConfig, base_dir: Path | None = None, steps: int | None = None, progress=None,
          init_adapter: Path | None = None) -> Path:
    """Fine-tune a LoRA adapter; from scratch, or continuing *init_adapter* (its rank and modules win over *cfg*'s)."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    base_dir = base_dir or ensure_base()
    vocab = TokenVocabulary.from_file(base_dir / "tokenizer.json")
    doc_types = load_document_types(get_settings().schema_dir)
    indexes: dict = {}
    encoded = [encode_example(ex, doc_types, vocab, indexes, cfg) for ex in examples]
    total = steps or max(1, int(len(encoded) * cfg.epochs))
    schedule = _schedule(len(encoded), total, cfg.seed)

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if init_adapter:
        model = PeftModel.from_pretrained(model, init_adapter, is_trainable=True)
    else:
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=list(cfg.target_modules), task_type="CAUSAL_LM"))
    frozen = freeze_lower_layers(model, cfg.train_layers)
    device = training_device()
    bf16 = uses_bf16(cfg.precision, device)
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * frac))

    started, running = time.time(), None
    for step, i in enumerate(schedule):
        ids, labels = encoded[i]
        for group in optim.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss_t = target_loss(model, ids, labels)
        loss_t.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        loss = float(loss_t.detach())
        running = loss if running is None else 0.9 * running + 0.1 * loss
        elapsed = time.time() - started
        eta = elapsed / (step + 1) * (total - step - 1)
        if progress:
            progress(step + 1, total, running, eta)
        elif (step + 1) % cfg.log_every == 0 or step + 1 == total:
            print(f"step {step + 1}/{total} loss {running:.4f} lr {lr_at(step):.2e} {elapsed:.0f}s eta {eta:.0f}s", flush=True)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    _to_fp16(out_dir / "adapter_model.safetensors")
    started_from = str(init_adapter) if init_adapter else None
    (out_dir / "train_config.json").write_text(json.dumps({**asdict(cfg), "examples": len(examples), "steps": total, "final_loss": running,
                                                           "init_adapter": started_from, "device": device, "frozen_layers": frozen,
                                                           "bf16": bf16, "seconds": round(time.time() - started)}, indent=2))
    return out_dir


def _to_fp16(path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(torch.float16) for k, v in load_file(path).items()}
    save_file(tensors, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="jsonl of examples (id, doc_type, text, target, labelled)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()
    cfg = TrainConfig(epochs=args.epochs)
    exs = load_examples(args.data)
    print(f"{len(exs)} examples", file=sys.stderr)
    train(exs, args.out, cfg, steps=args.steps)
