"""How much each int8 recipe changes the model, side by side in one run, against fp32.

For invoices of the synthetic generator (bootstrap families and the held-out
one), the target JSON is fed teacher-forced and the top token at every target
position is compared with the fp32 model's: a changed top token is, in
greedy decoding, a changed output. Also reported: KL divergence from fp32,
prefill time over the documents, one decode step's time, and file size.

    python -m benchmarks.quantization [--fp32 MODEL_DIR] [--docs 5]

MODEL_DIR is an fp32 model folder (``python -m training.build_default --fp32``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from config.settings import get_settings
from service.extract.artifacts import QUANTIZATION
from service.extract.engine import Engine, load_index
from service.extract.prompt import build_prompt, fit_to_budget, render_target, tokenize_target
from service.extract.session import ModelSession
from training import synth


def recipes(tokenizer: Path):
    """name → function(fp32 path, out path) writing a quantized model."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from training.export import quantize_model, quantize_weights

    def dynamic(per_channel: bool):
        return lambda src, dst: quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)

    def weight_only(block_size: int, accuracy_level: int | None):
        return lambda src, dst: quantize_weights(src, dst, accuracy_level=accuracy_level, block_size=block_size)

    made = {
        "dynamic int8, per tensor": dynamic(False),
        "dynamic int8, per channel": dynamic(True),
    }
    for block_size, level in ((64, None), (32, 4), (64, 4), (128, 4)):
        made[f"weight-only int8, blocks of {block_size}, {'int8' if level == 4 else 'fp32'} compute"] = weight_only(block_size, level)
    made[f"smoothed dynamic int8, {' and '.join(QUANTIZATION['weight_only'])} weight-only (shipped)"] = (
        lambda src, dst: quantize_model(src, dst, tokenizer))
    return made


def sequences(engine: Engine, docs: int) -> list[tuple[list[int], list[int]]]:
    doc_type, vocab = engine.doc_types["invoice"], engine.vocab
    index = load_index(doc_type, vocab, Path(tempfile.mkdtemp(prefix="docket-qidx-")))
    examples = list(synth.generate_invoices(docs, 4242, keep_pdf=False))
    examples += list(synth.generate_invoices(max(1, docs // 2), 9001, families=[synth.HELD_OUT_FAMILY], keep_pdf=False))
    out = []
    for ex in examples:
        fitted = fit_to_budget(ex.text.split("\f"), engine.count_tokens, engine.settings.max_prompt_tokens)
        target, _ = render_target(doc_type, ex.target)
        out.append((vocab.encode(build_prompt(doc_type, fitted.text)), tokenize_target(target, vocab, index)))
    return out


def target_rows(session: ModelSession, seqs) -> tuple[list[np.ndarray], float]:
    """Logits at the target's positions, teacher-forced: the first token alone (the decoder feeds
    the cached prompt head a token a call), then the rest of the prompt and the target in one pass."""
    started, rows = time.perf_counter(), []
    for prompt, target in seqs:
        _, cache = session.forward(prompt[:1], session.empty_cache(len(prompt) + len(target)), keep=1)
        logits, _ = session.forward(prompt[1:] + target, cache, keep=len(target) + 1)
        rows.append(logits[:-1])
    return rows, time.perf_counter() - started


def step_ms(session: ModelSession, seqs, steps: int = 40) -> float:
    prompt, target = seqs[0]
    _, cache = session.forward(prompt, session.empty_cache(), keep=1)
    started = time.perf_counter()
    for tok in target[:steps]:
        _, cache = session.forward([tok], cache, keep=1)
    return (time.perf_counter() - started) / min(steps, len(target)) * 1000


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, default=None, help="fp32 model folder (default: the default model's -fp32 build)")
    parser.add_argument("--docs", type=int, default=4)
    args = parser.parse_args()
    if args.fp32 is None:
        from training.build_default import build_default
        args.fp32 = build_default(fp32=True)
    engine = Engine(args.fp32, get_settings())
    seqs = sequences(engine, args.docs)
    reference, ref_s = target_rows(engine.session, seqs)
    positions = sum(len(t) for _, t in seqs)
    print(f"{len(seqs)} invoices, {positions} target positions; fp32: prefill {ref_s:.1f} s, "
          f"step {step_ms(engine.session, seqs):.1f} ms, {(args.fp32 / 'model.onnx').stat().st_size / 2**20:.0f} MB")
    print(f"{'recipe':58} {'top-1 = fp32':>12} {'KL':>7} {'prefill':>8} {'step':>8} {'size':>7}")
    work = Path(tempfile.mkdtemp(prefix="docket-quant-"))
    for i, (name, make) in enumerate(recipes(args.fp32 / "tokenizer.json").items()):
        path = work / f"q{i}.onnx"
        make(args.fp32 / "model.onnx", path)
        session = ModelSession(path)
        rows, seconds = target_rows(session, seqs)
        agree = np.mean(np.concatenate([a.argmax(1) == b.argmax(1) for a, b in zip(rows, reference)]))
        kl = np.mean(np.concatenate([(np.exp(log_softmax(b)) * (log_softmax(b) - log_softmax(a))).sum(1)
                                     for a, b in zip(rows, reference)]))
        print(f"{name:58} {agree:12.2%} {kl:7.4f} {seconds:7.1f}s {step_ms(session, seqs):6.1f}ms "
              f"{path.stat().st_size / 2**20:5.0f}MB", flush=True)
        path.unlink()


if __name__ == "__main__":
    main()
