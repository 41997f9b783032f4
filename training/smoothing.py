"""Activation smoothing (SmoothQuant) before int8: move each RMSNorm output's outlier channels into the weights.

Dynamic int8 quantizes a MatMul's input with one scale for the whole
tensor, so a channel that runs ten times the others' size leaves the rest a
few of the 255 levels. An RMSNorm output feeds its MatMuls through a
per-channel weight (gamma): dividing gamma's channel *c* by ``s_c`` and
multiplying row *c* of every consuming MatMul's weight by ``s_c`` leaves the
product unchanged in exact arithmetic and flattens the activations, with
``s_c = amax_c^alpha / wmax_c^(1 - alpha)`` (Xiao et al., 2023): ``amax`` the
channel's largest activation over calibration prompts, ``wmax`` its largest
weight. The first position is left out of the statistics: its activations
run to thousands of times the others' (an attention sink), and the decoder
feeds it alone (``service.extract.decoder``), so it never shares a scale.

    calibrate(fp32 model, prompts) → amax per RMSNorm output → smooth(model, amax)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

NORMS = ("SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization")


def smoothable(model) -> dict[str, tuple[str, list[str]]]:
    """RMSNorm output → (its gamma initializer, the weight initializers of the MatMuls it feeds).

    A MatMul is reached through the ``logits_to_keep`` Slice too (the LM head).
    *model* is an ``onnx.ModelProto``.
    """
    producer = {out: node for node in model.graph.node for out in node.output}
    weights = {t.name for t in model.graph.initializer}
    found: dict[str, tuple[str, list[str]]] = {}
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:
            continue
        x = node.input[0]
        while x in producer and producer[x].op_type == "Slice":
            x = producer[x].input[0]
        norm = producer.get(x)
        if norm is None or norm.op_type not in NORMS or norm.output[0] != x:
            continue
        gamma = norm.input[1] if norm.op_type == "SimplifiedLayerNormalization" else norm.input[2]
        found.setdefault(x, (gamma, []))[1].append(node.input[1])
    return found


def calibrate(model, prompts: list[list[int]]) -> dict[str, np.ndarray]:
    """The largest absolute value of each smoothable activation's channels over *prompts*, position 0 left out."""
    import onnx
    import onnxruntime as ort

    names = list(smoothable(model))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        onnx.save(probe, str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in session.get_inputs()}
    amax: dict[str, np.ndarray] = {}
    for ids in prompts:
        feed = {"input_ids": np.asarray([ids], dtype=np.int64), "attention_mask": np.ones((1, len(ids)), dtype=np.int64)}
        if "logits_to_keep" in inputs:
            feed["logits_to_keep"] = np.asarray([1], dtype=np.int64)
        if "position_ids" in inputs:
            feed["position_ids"] = np.arange(len(ids), dtype=np.int64)[None, :]
        for name, spec in inputs.items():
            if name.startswith("past_key_values"):
                feed[name] = np.zeros((1, int(spec.shape[1]), 0, int(spec.shape[3])), dtype=np.float32)
        for name, value in zip(names, session.run(names, feed)):
            rows = value.reshape(-1, value.shape[-1])[1:]
            if len(rows):
                seen = np.abs(rows).max(axis=0)
                amax[name] = np.maximum(amax[name], seen) if name in amax else seen
    return amax


def smooth(model, amax: dict[str, np.ndarray], alpha: float = 0.5, skip: set[str] = frozenset()) -> int:
    """Fold the smoothing scales into *model*'s gammas and weights in place; returns the RMSNorms smoothed.

    An RMSNorm that feeds a MatMul named in *skip* (one left to weight-only
    quantization, which needs no smoothing) is left as it is.
    """
    from onnx import numpy_helper

    tensors = {t.name: t for t in model.graph.initializer}
    skipped_weights = {n.input[1] for n in model.graph.node if n.name in skip}
    done = 0
    for name, (gamma, weight_names) in smoothable(model).items():
        if name not in amax or skipped_weights & set(weight_names):
            continue
        weights = [numpy_helper.to_array(tensors[w]) for w in weight_names]
        wmax = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        scale = np.clip(amax[name], 1e-5, None) ** alpha / np.clip(wmax, 1e-5, None) ** (1 - alpha)
        scale = scale / np.exp(np.mean(np.log(scale)))  # geometric mean 1: gammas keep their size
        g = numpy_helper.to_array(tensors[gamma])
        tensors[gamma].CopyFrom(numpy_helper.from_array((g / scale).astype(g.dtype), gamma))
        for w_name, w in zip(weight_names, weights):
            tensors[w_name].CopyFrom(numpy_helper.from_array((w * scale[:, None]).astype(w.dtype), w_name))
        done += 1
    return done
