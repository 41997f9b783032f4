"""Export a merged Hugging Face model folder to the ONNX model folder Docket serves.

merged fp32 folder → ONNX graph with past key values → int8 (smoothed
dynamic int8, MatMulNBits for two kinds of MatMul) → tokenizer.json + docket-model.json
beside it. The serving side needs nothing but that folder.

Two graph builders write the same interface (``input_ids``, ``attention_mask``,
``past_key_values.*`` in; ``logits``, ``present.*`` out; KV as batch × heads
× positions × head size):

* ``gqa`` (default): onnxruntime-genai's model builder, one fused
  ``GroupQueryAttention`` per layer with rotary embedding inside, fused QKV
  and skip-RMSNorm: about 340 nodes. It writes the KV cache in place
  (``service.extract.session``), and its one-token decode call takes about
  half the time of the other's on two cores (``python -m benchmarks.graphs``).
* ``optimum``: optimum-onnx's ``text-generation-with-past`` export of the
  transformers model, about 7,400 nodes (3,155 run after onnxruntime's
  optimisations: KV concatenation, 3→9 head expansion and shape plumbing in
  every layer, most of a decode call's time). Kept to compare against.

Why two kinds of int8 (``QUANTIZATION``): weight-only MatMulNBits (int8
weights in blocks of 64, activations quantized per block of each row) agrees
with fp32 at 99.9% of target positions but runs the prefill no faster than
fp32. Dynamic int8 (one activation scale per tensor) runs on onnxruntime's
integer GEMM, AMX on a Xeon that has it, but as first measured changed the
top token at 4 to 5% of positions: the attention-sink token's activations
run to thousands of times the others', and the MLP down projection's inputs
carry outlier tokens at 50 times the median. Fed alone (the decoder's cached
prompt head), smoothed (:mod:`training.smoothing`), and with the down
projection and the LM head left weight-only, it agrees with fp32 at 99.94%
of the positions of 30 SROIE evaluation receipts (weight-only: 99.87%) and
takes 0.67 of weight-only's time teacher-forcing them on a two-core Xeon
(``python -m benchmarks.quantization``; README, Speed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from service.extract.artifacts import CALIBRATION, META_FILE, MODEL_FILE, QUANTIZATION
from service.extract.vocabulary import TokenVocabulary


log = logging.getLogger(__name__)

GRAPHS = ("gqa", "optimum")


def export_onnx(merged_dir: Path, out_dir: Path, quantize: bool = True, meta: dict | None = None,
                graph: str = "gqa", drafts: bool = True) -> Path:
    """Write ``out_dir`` atomically: a half-exported model is never seen by a worker.

    With *drafts*, the model's answers to the calibration documents go into its
    metadata (:func:`draft_answers`); a test model of random weights has none worth keeping.
    """
    if graph not in GRAPHS:
        raise ValueError(f"unknown graph builder {graph!r}; one of {', '.join(GRAPHS)}")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=out_dir.name + ".", dir=out_dir.parent))
    try:
        fp32_dir = work / "fp32"
        (build_gqa_graph if graph == "gqa" else build_optimum_graph)(Path(merged_dir), fp32_dir, work / "cache")
        keep_last_logits(fp32_dir / MODEL_FILE)
        final = work / "final"
        final.mkdir()
        if quantize:
            calibrated_on = quantize_model(fp32_dir / MODEL_FILE, final / MODEL_FILE, Path(merged_dir) / "tokenizer.json")
        else:
            shutil.move(str(fp32_dir / MODEL_FILE), final / MODEL_FILE)
        shutil.copy(Path(merged_dir) / "tokenizer.json", final / "tokenizer.json")
        info = dict(meta or {})
        info.setdefault("precision", "int8" if quantize else "fp32")
        info.setdefault("graph", graph_recipe(graph))
        if quantize:  # the prompts' digest as built, which differs from the recipe's only after a warning
            info.setdefault("quantization", {**QUANTIZATION, "calibration": {**CALIBRATION, "prompts_sha256": calibrated_on}})
        if drafts:  # decoded before the metadata is written: raw answers need none of it
            info["draft_answers"] = draft_answers(final)
        (final / META_FILE).write_text(json.dumps(info, indent=2, sort_keys=True))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        final.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir


def graph_recipe(graph: str) -> str:
    """What built the graph, with the installed version (the Makefile pins it, the build recipe names it)."""
    from importlib.metadata import version

    if graph == "gqa":
        return f"onnxruntime-genai {version('onnxruntime-genai')} model builder, fp32, cpu"
    return f"optimum-onnx {version('optimum-onnx')} text-generation-with-past, opset 17"


def build_gqa_graph(merged_dir: Path, out_dir: Path, cache_dir: Path) -> None:
    """onnxruntime-genai's builder: reads the safetensors, writes model.onnx (+ .data) and its own configs.

    Installed without its dependencies (it asks for the CPU onnxruntime,
    which would overwrite onnxruntime-gpu's files): the builder is pure
    Python over torch, transformers, onnx-ir and onnxruntime's quantizer,
    all of which training has. It runs in a child process because it talks
    (a line per layer, a progress bar per tensor): its output is shown only
    when it fails, without touching this process's streams, which a thread
    following a training run may be writing to.
    """
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-m", "docket", "-i", str(merged_dir),
               "-o", str(out_dir), "-p", "fp32", "-e", "cpu", "-c", str(cache_dir),
               "--extra_options", f"filename={MODEL_FILE}", "hf_token=false", "hf_remote=false"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"the ONNX graph builder failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")


def build_optimum_graph(merged_dir: Path, out_dir: Path, cache_dir: Path) -> None:
    from optimum.exporters.onnx import main_export

    main_export(str(merged_dir), output=str(out_dir), task="text-generation-with-past", opset=17, device="cpu",
                no_post_process=False, do_validation=False)


def onnx_load(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=True)


def onnx_save(model, path: Path) -> None:
    """One file when it fits protobuf's 2 GB limit, so a model folder is model.onnx and nothing else."""
    import onnx

    onnx.save(model, str(path), save_as_external_data=model.ByteSize() > 2**31 - 2**20)


# The calibration documents, stored: the served model's smoothing scales and
# draft answers come from them, so they are kept apart from the generator,
# whose every improvement would otherwise rebuild the default model and move
# its near-ties. `python -m training.export --write-calibration-documents`
# draws a new set (which changes the recipe's digest, and so the model).
CALIBRATION_DOCUMENTS = Path(__file__).with_name("calibration_documents.jsonl")


@dataclass(frozen=True)
class CalibrationDocument:
    id: str
    doc_type: str
    text: str


def calibration_documents(path: Path = CALIBRATION_DOCUMENTS) -> list[CalibrationDocument]:
    """Synthetic invoices, receipts and tickets (never a document evaluated on), as stored."""
    return [CalibrationDocument(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_calibration_documents(path: Path = CALIBRATION_DOCUMENTS) -> list[CalibrationDocument]:
    """Draw the calibration documents from the generator as it is now; :data:`CALIBRATION` fixes seed and count."""
    from training import synth

    per_type, seed = CALIBRATION["per_type"], CALIBRATION["seed"]
    drawn = [*synth.generate_invoices(per_type, seed, keep_pdf=False), *synth.generate_receipts(per_type // 2, seed),
             *synth.generate_tickets(per_type, seed)]
    documents = [CalibrationDocument(e.id, e.doc_type, e.text) for e in drawn]
    path.write_text("".join(json.dumps(asdict(d), ensure_ascii=False) + "\n" for d in documents), encoding="utf-8")
    return documents


def calibration_texts(vocab: TokenVocabulary) -> list[str]:
    """The calibration documents' prompts, as served: pages fitted to the budget, in the chat prompt."""
    from config.settings import get_settings
    from service.doctypes import load_document_types
    from service.extract.prompt import build_prompt, fit_to_budget

    doc_types = load_document_types(get_settings().schema_dir)

    def count(text: str) -> int:
        return len(vocab.encode(text))

    return [build_prompt(doc_types[e.doc_type], fit_to_budget(e.text.split("\f"), count, CALIBRATION["budget"]).text)
            for e in calibration_documents() if e.doc_type in doc_types]


def draft_answers(model_dir: Path) -> dict[str, list[str]]:
    """The model's complete answers to the calibration documents, by document type.

    Its decoder drafts keys, runs of nulls and repeated phrasing from them
    (:mod:`service.extract.drafting`). They are decoded without drafts: a
    draft changes a verifying pass's width and so the int8 rounding, and
    answers decoded with the drafting code of the day came out otherwise
    after a change to it, under the same model key. So they depend on the
    model and these documents alone, and so does every answer drafted from them.
    """
    from config.settings import get_settings
    from service.extract.engine import Engine
    from service.ingest import ingest_text

    engine = Engine(model_dir, get_settings())
    answers: dict[str, list[str]] = {}
    for example in calibration_documents():
        doc_type = engine.doc_types.get(example.doc_type)
        if doc_type is None:
            continue
        answer = engine.extract(doc_type, ingest_text(example.text), speculate=False).raw_json
        try:
            json.loads(answer)
        except ValueError:  # cut at the token cap
            continue
        answers.setdefault(doc_type.name, []).append(answer)
    return answers


def calibration_digest(texts: list[str]) -> str:
    """What :data:`CALIBRATION` records of the prompts: 16 hex digits of their SHA-256."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


def quantize_model(fp32_path: Path, out_path: Path, tokenizer_path: Path) -> str:
    """int8 by :data:`QUANTIZATION`: smoothed dynamic int8 for most MatMuls, weight-only for the rest.
    Returns the digest of the calibration prompts it smoothed on.

    Dynamic int8 runs on onnxruntime's integer GEMM (AMX on CPUs that have
    it): on a two-core Xeon a prefill takes about two thirds of weight-only int8's time.
    Its one scale per input tensor is what costs accuracy, so the inputs are
    smoothed first (:mod:`training.smoothing`), the decoder feeds the
    attention-sink token alone, and the two MatMuls whose inputs smoothing
    cannot flatten keep weight-only int8 with per-block activation scales
    (``python -m benchmarks.quantization``).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from training.smoothing import calibrate, smooth

    model = onnx_load(fp32_path)
    weight_only = [n.name for n in model.graph.node if n.op_type == "MatMul"
                   and any(part in n.name for part in QUANTIZATION["weight_only"])]
    vocab = TokenVocabulary.from_file(tokenizer_path)
    texts = calibration_texts(vocab)
    if (digest := calibration_digest(texts)) != CALIBRATION["prompts_sha256"]:
        # An edited schema description changes the prompts too, and must not stop a build (or a
        # retraining); the model's metadata records the digest it was built on. In the repository a
        # test holds the recorded digest to the generator's, so the default model's key follows it.
        log.warning("calibration prompts' digest %s differs from the recipe's %s: the synthetic generator, the "
                    "compaction or the prompt changed; the default model's cache key names the recipe's "
                    "(CALIBRATION in service/extract/artifacts.py)", digest, CALIBRATION["prompts_sha256"])
    amax = calibrate(model, [vocab.encode(text) for text in texts])
    smooth(model, amax, QUANTIZATION["smoothing_alpha"], skip=set(weight_only))
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent) as tmp:
        smoothed, dynamic = Path(tmp) / "smoothed.onnx", Path(tmp) / "dynamic.onnx"
        onnx_save(model, smoothed)
        root = logging.getLogger()  # the quantizer logs a line per tensor at INFO
        level = root.level
        root.setLevel(max(level, logging.WARNING))
        try:
            quantize_dynamic(str(smoothed), str(dynamic), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=weight_only)
        finally:
            root.setLevel(level)
        quantize_weights(dynamic, out_path)  # the MatMuls left in fp32: the weight-only ones
    return digest


def quantize_weights(fp32_path: Path, out_path: Path, accuracy_level: int | None = QUANTIZATION["accuracy_level"],
                     block_size: int = QUANTIZATION["block_size"]) -> None:
    """Every fp32 MatMul weight to int8 in blocks of ``block_size``, the LM head's too; activations stay fp32 between ops.

    *accuracy_level* 4 computes in int8; None in fp32 (``benchmarks.quantization`` compares both,
    and block sizes). Blocks of 64 divide the hidden size (576) and take 0.935
    of 32's time per invoice on an AMD EPYC, the prefill 0.86; 128 pads every
    row to 640 and cost a SROIE total and the calibration (ECE 0.033 → 0.049).
    In fp32 the LM head (576 × 49,152 weights, 113 MB) is as many bytes as
    all the other layers in int8, read on every decode call: in int8 a
    one-token call takes 0.82 of the time on an AMD EPYC and 0.81 on an Intel
    Xeon, with SROIE, invoice2data and Bitext accuracy within a value of the
    fp32 head's (README, Speed). In the optimum-onnx
    graph it was slower on the EPYC (32 against 25 ms).
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)  # a line per MatMul
    model = onnx_load(fp32_path)
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=QUANTIZATION["bits"],
        block_size=block_size,
        is_symmetric=QUANTIZATION["symmetric"],
        accuracy_level=accuracy_level,
    )
    quantizer.process()
    quantizer.model.save_model_to_file(str(out_path), use_external_data_format=False)


KEEP_INPUT = "logits_to_keep"


def lm_head(graph):
    """The node that writes the graph's ``logits`` output."""
    return next(n for n in graph.node if "logits" in n.output)


def keep_last_logits(model_path: Path) -> None:
    """Give the graph a ``logits_to_keep`` input: the LM head runs on the last N positions only.

    The head maps 576 → 49,152 per position. A 600-token prefill needs one
    row of logits, not 600 (118 MB and about a tenth of the prefill's work);
    a verification pass needs one row per proposed token plus one.
    """
    from onnx import TensorProto, helper

    model = onnx_load(model_path)
    graph = model.graph
    head = lm_head(graph)
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
    for stale in model_path.parent.glob(model_path.name + "*"):  # the external data is inlined again when it fits
        stale.unlink()
    onnx_save(model, model_path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("merged_dir", type=Path, nargs="?")
    parser.add_argument("out_dir", type=Path, nargs="?")
    parser.add_argument("--fp32", action="store_true", help="skip int8 quantization")
    parser.add_argument("--graph", choices=GRAPHS, default="gqa")
    parser.add_argument("--write-calibration-documents", action="store_true",
                        help=f"draw {CALIBRATION_DOCUMENTS.name} anew from the generator (changes the default model's key)")
    args = parser.parse_args()
    if args.write_calibration_documents:
        print(f"{len(write_calibration_documents())} documents in {CALIBRATION_DOCUMENTS}")
    elif args.merged_dir is None or args.out_dir is None:
        parser.error("merged_dir and out_dir are required")
    else:
        print(export_onnx(args.merged_dir, args.out_dir, quantize=not args.fp32, graph=args.graph))
