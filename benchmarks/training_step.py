"""Seconds a retraining step takes on this machine, per precision and number of layers that learn, side by side.

A retraining run's length is its number of steps times this. Each setting
continues the shipped adapter (as a run does) on the same invoices of the
held-out layout family for a few steps; the first step (warm-up) is not
counted. "auto" says which precision ``training.finetune.uses_bf16`` picks
here, so a wrong guess (bf16 emulated on a CPU without native bf16) shows.

    python -m benchmarks.training_step [--steps 4] [--settings fp32:0 bf16:0 fp32:20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from service.extract.artifacts import DEFAULT_ADAPTER_DIR
from training.dataset import TrainExample
from training.finetune import TrainConfig, native_cpu_bf16, train, training_device, uses_bf16
from training.synth import HELD_OUT_FAMILY, generate_invoices


def step_seconds(examples: list[TrainExample], precision: str, train_layers: int, steps: int) -> float:
    stamps: list[float] = []
    cfg = TrainConfig(precision=precision, train_layers=train_layers, warmup_steps=1)
    with tempfile.TemporaryDirectory() as out:
        train(examples, Path(out), cfg, steps=steps + 1, init_adapter=DEFAULT_ADAPTER_DIR,
              progress=lambda *_: stamps.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.training_step", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per setting")
    parser.add_argument("--settings", nargs="+", default=["fp32:0", "bf16:0"],
                        help="precision:train_layers pairs (0: every layer)")
    args = parser.parse_args()
    examples = [TrainExample(e.id, e.doc_type, e.text, e.target, None)
                for e in generate_invoices(args.steps + 1, 9001, families=[HELD_OUT_FAMILY], keep_pdf=False)]
    device = training_device()
    print(f"device {device}; native bf16 on this CPU: {native_cpu_bf16()}; "
          f"'auto' picks {'bf16' if uses_bf16('auto', device) else 'fp32'}", flush=True)
    times = {}
    for setting in args.settings:
        precision, layers = setting.split(":")
        times[setting] = step_seconds(examples, precision, int(layers), args.steps)
        print(f"{precision:>5}, train_layers {layers:>2}: {times[setting]:.2f} s a step (median of {args.steps})", flush=True)
    first = args.settings[0]
    print("; ".join(f"{s}: {times[s] / times[first]:.2f}x {first}'s step" for s in args.settings[1:]))


if __name__ == "__main__":
    main()
