"""The int8 export: weight-only MatMulNBits, recorded in the model's metadata, and close to fp32."""

import json
from pathlib import Path

import numpy as np
import onnx

from service.extract.session import ModelSession
from service.extract.vocabulary import TokenVocabulary
from training.export import META_FILE, QUANTIZATION, export_onnx


def test_int8_export_quantizes_weights_only_and_keeps_the_fp32_answers(tiny_model_dir: Path, tiny_base_dir: Path,
                                                                       tmp_path: Path):
    out = export_onnx(tiny_base_dir, tmp_path / "int8", quantize=True, meta={"version": "tiny-int8"})

    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    ops = {n.op_type for n in graph.node}
    assert "MatMulNBits" in ops and "DynamicQuantizeLinear" not in ops  # activations are never quantized
    meta = json.loads((out / META_FILE).read_text())
    assert meta["precision"] == "int8" and meta["quantization"] == QUANTIZATION
    assert any(i.name == "logits_to_keep" for i in graph.input)  # the head still runs on the kept rows only

    vocab = TokenVocabulary.from_file(out / "tokenizer.json")
    ids = vocab.encode("Invoice INV-2024-0042 from Müller GmbH, total EUR 1.234,56, due 2024-03-31.")
    fp32, int8 = ModelSession(tiny_model_dir / "model.onnx"), ModelSession(out / "model.onnx")
    ref, _ = fp32.forward(ids, fp32.empty_cache())
    got, _ = int8.forward(ids, int8.empty_cache())
    assert got.shape == ref.shape
    assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.9
    assert (out / "model.onnx").stat().st_size < (tiny_model_dir / "model.onnx").stat().st_size
