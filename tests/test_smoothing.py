"""Activation smoothing: the model computes the same function, with flatter activations to quantize."""

from pathlib import Path

import numpy as np
import onnx

from service.extract.session import ModelSession
from service.extract.vocabulary import TokenVocabulary
from training.smoothing import calibrate, smooth, smoothable

TEXTS = [
    "Invoice INV-2024-0042 from Müller GmbH, total EUR 1.234,56, due 2024-03-31.",
    "Hello, my order #A-7781 never arrived and I want a refund now! Regards, Maria",
]


def _spread(amax: dict[str, np.ndarray]) -> float:
    """How far the largest channel stands above the median one, worst RMSNorm output."""
    return max(float(a.max() / np.median(a)) for a in amax.values())


def test_smoothing_keeps_the_logits_and_flattens_the_channels(tiny_model_dir: Path, tmp_path: Path):
    vocab = TokenVocabulary.from_file(tiny_model_dir / "tokenizer.json")
    prompts = [vocab.encode(t) for t in TEXTS]
    model = onnx.load(str(tiny_model_dir / "model.onnx"))
    groups = smoothable(model)
    # Both layers' attention and MLP inputs, and the LM head behind the final norm.
    assert len(groups) == 5 and any(len(weights) == 2 for _, weights in groups.values())
    before = calibrate(model, prompts)

    assert smooth(model, before, alpha=0.75, skip={n.name for n in model.graph.node if "lm_head" in n.name}) == 4
    onnx.save(model, str(tmp_path / "model.onnx"))
    after = calibrate(model, prompts)
    assert _spread(after) < _spread(before)

    original, smoothed = ModelSession(tiny_model_dir / "model.onnx"), ModelSession(tmp_path / "model.onnx")
    ids = prompts[0]
    ref, _ = original.forward(ids, original.empty_cache())
    got, _ = smoothed.forward(ids, smoothed.empty_cache())
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
