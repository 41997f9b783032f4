"""Export a merged Hugging Face model folder to the ONNX model folder Docket serves.

merged fp32 folder → ONNX with past key values (optimum-onnx) → int8 weights
(onnxruntime weight-only MatMulNBits) → tokenizer.json + docket-model.json
beside it. The serving side needs nothing but that folder.

Why weight-only: dynamic quantization (int8 weights *and* activations, one
scale per tensor) changed the model's top token at about 4 to 5% of the
positions of invoice targets against fp32, which is a wrong field in most
documents. Weight-only int8 in blocks of 32 with int8 compute (accuracy
level 4) agrees with fp32 at 99.7 to 99.9% of positions. It decodes a token
faster than fp32 and dynamic int8 (38 against 42 and 50 ms), but its prefill
is slower (14.3 against 11.9 and 9.3 s over six invoices). Measured in one
run with ``python -m benchmarks.quantization``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

MODEL_FILE = "model.onnx"
META_FILE = "docket-model.json"


def export_onnx(merged_dir: Path, out_dir: Path, quantize: bool = True, meta: dict | None = None) -> Path:
    """Write ``out_dir`` atomically: a half-exported model is never seen by a worker."""
    from optimum.exporters.onnx import main_export

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        fp32_dir = work / "fp32"
        main_export(
            str(merged_dir),
            output=str(fp32_dir),
            task="text-generation-with-past",
            opset=17,
            device="cpu",
            no_post_process=False,
            do_validation=False,
        )
        keep_last_logits(fp32_dir / MODEL_FILE)
        final = work / "final"
        final.mkdir()
        if quantize:
            quantize_weights(fp32_dir / MODEL_FILE, final / MODEL_FILE)
        else:
            for f in fp32_dir.glob("model.onnx*"):
                shutil.move(str(f), final / f.name)
        shutil.copy(Path(merged_dir) / "tokenizer.json", final / "tokenizer.json")
        info = dict(meta or {})
        info.setdefault("precision", "int8" if quantize else "fp32")
        if quantize:
            info.setdefault("quantization", QUANTIZATION)
        (final / META_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        final.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir


QUANTIZATION = {"method": "MatMulNBits weight-only", "bits": 8, "block_size": 32, "symmetric": True,
                "accuracy_level": 4}


def quantize_weights(fp32_path: Path, out_path: Path, accuracy_level: int | None = QUANTIZATION["accuracy_level"]) -> None:
    """Every MatMul weight to int8 in blocks of ``block_size``; activations stay fp32 between ops.

    *accuracy_level* 4 computes in int8; None in fp32 (``benchmarks.quantization`` compares both).
    """
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line per MatMul
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(fp32_path), load_external_data=True),
        bits=QUANTIZATION["bits"],
        block_size=QUANTIZATION["block_size"],
        is_symmetric=QUANTIZATION["symmetric"],
        accuracy_level=accuracy_level,
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(out_path), use_external_data_format=False)


KEEP_INPUT = "logits_to_keep"


def keep_last_logits(model_path: Path) -> None:
    """Give the graph a ``logits_to_keep`` input: the LM head runs on the last N positions only.

    The head maps 576 → 49,152 per position. A 600-token prefill needs one
    row of logits, not 600 (118 MB and about a tenth of the prefill's work);
    a verification pass needs one row per proposed token plus one.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path), load_external_data=True)
    graph = model.graph
    head = next(n for n in graph.node if "logits" in n.output)
    if head.op_type != "MatMul":
        raise RuntimeError(f"unexpected LM head op {head.op_type}; cannot insert {KEEP_INPUT}")
    hidden = head.input[0]
    graph.input.append(helper.make_tensor_value_info(KEEP_INPUT, TensorProto.INT64, [1]))
    graph.initializer.extend([
        helper.make_tensor("keep_axis", TensorProto.INT64, [1], [1]),
        helper.make_tensor("keep_end", TensorProto.INT64, [1], [2**62]),
    ])
    nodes = [
        helper.make_node("Neg", [KEEP_INPUT], ["keep_start"], name="keep_start"),
        helper.make_node("Slice", [hidden, "keep_start", "keep_end", "keep_axis"], ["hidden_kept"], name="keep_slice"),
    ]
    head.input[0] = "hidden_kept"
    position = list(graph.node).index(head)
    for offset, node in enumerate(nodes):
        graph.node.insert(position + offset, node)
    onnx.save(model, str(model_path), save_as_external_data=model.ByteSize() > 2**31 - 2**20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("merged_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--fp32", action="store_true", help="skip int8 quantization")
    args = parser.parse_args()
    print(export_onnx(args.merged_dir, args.out_dir, quantize=not args.fp32))
