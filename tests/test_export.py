"""The int8 export: smoothed dynamic int8 and weight-only MatMulNBits, recorded in the model's metadata, close to fp32."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from service.extract.artifacts import BUILD_RECIPE, CALIBRATION, QUANTIZATION
from service.extract.session import ModelSession
from service.extract.vocabulary import TokenVocabulary
from training.export import (META_FILE, calibration_digest, calibration_documents, calibration_texts, export_onnx,
                              lm_head, write_calibration_documents)


def test_int8_export_follows_the_recipe_and_keeps_the_fp32_answers(tiny_model_dir: Path, tiny_base_dir: Path,
                                                                    tmp_path: Path):
    out = export_onnx(tiny_base_dir, tmp_path / "int8", quantize=True, meta={"version": "tiny-int8"}, drafts=False)

    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    ops = {n.op_type for n in graph.node}
    assert "MatMul" not in ops  # every MatMul is int8, one way or the other
    assert "DynamicQuantizeLinear" in ops and "MatMulInteger" in ops  # the smoothed ones: dynamic int8
    weight_only = [n.name for n in graph.node if n.op_type == "MatMulNBits"]
    assert weight_only and all(any(p in name for p in QUANTIZATION["weight_only"]) for name in weight_only)
    assert lm_head(graph).op_type == "MatMulNBits"  # in fp32 the head is as many bytes as all the int8 layers
    assert sum("down_proj" in name for name in weight_only) == 2  # both layers' MLP down projections
    applied = {a.name: onnx.helper.get_attribute_value(a) for n in graph.node if n.op_type == "MatMulNBits" for a in n.attribute}
    assert (applied["bits"], applied["block_size"], applied["accuracy_level"]) == (
        QUANTIZATION["bits"], QUANTIZATION["block_size"], QUANTIZATION["accuracy_level"])
    meta = json.loads((out / META_FILE).read_text())
    assert meta["precision"] == "int8" and meta["quantization"] == QUANTIZATION
    # The default model's cache key is a hash of the recipe: a changed quantization must change it.
    assert f"int{QUANTIZATION['bits']}, symmetric blocks of {QUANTIZATION['block_size']}" in BUILD_RECIPE
    assert f"alpha {QUANTIZATION['smoothing_alpha']}" in BUILD_RECIPE and QUANTIZATION["dynamic"] in BUILD_RECIPE
    assert meta["graph"].startswith("onnxruntime-genai ") and "GroupQueryAttention" in {n.op_type for n in graph.node}
    assert any(i.name == "logits_to_keep" for i in graph.input)  # the head still runs on the kept rows only

    vocab = TokenVocabulary.from_file(out / "tokenizer.json")
    ids = vocab.encode("Invoice INV-2024-0042 from Müller GmbH, total EUR 1.234,56, due 2024-03-31.")
    fp32, int8 = ModelSession(tiny_model_dir / "model.onnx"), ModelSession(out / "model.onnx")
    ref, _ = fp32.forward(ids, fp32.empty_cache())
    _, cache = int8.forward(ids[:1], int8.empty_cache())  # the first token alone, as the decoder feeds it
    got, _ = int8.forward(ids[1:], cache)
    assert got.shape == ref[1:].shape
    assert np.mean(got.argmax(1) == ref[1:].argmax(1)) >= 0.9
    assert (out / "model.onnx").stat().st_size < (tiny_model_dir / "model.onnx").stat().st_size


def test_the_calibration_documents_are_stored_apart_from_the_generator(tmp_path: Path):
    """Generator work must not rebuild the served model: the documents are read from the repository,
    and drawing a new set from the generator is a deliberate step that writes the same form."""
    stored = calibration_documents()
    assert {d.id.split("-")[0] for d in stored} == {"inv", "rcp", "tkt"}
    assert {d.doc_type for d in stored} == {"invoice", "ticket"} and all(d.text.strip() for d in stored)
    drawn = write_calibration_documents(tmp_path / "drawn.jsonl")
    assert calibration_documents(tmp_path / "drawn.jsonl") == drawn
    assert [d.id for d in drawn] == [d.id for d in stored]  # the same seed and counts as the stored set


def test_the_calibration_prompts_are_the_ones_the_recipe_names(tiny_model_dir: Path, tiny_base_dir: Path,
                                                               tmp_path: Path, monkeypatch, caplog):
    """The smoothing scales come from synthetic prompts; their digest keys the model cache with the rest of
    the recipe. A build on other prompts (an edited schema description) goes on, says so, and records them."""
    texts = calibration_texts(TokenVocabulary.from_file(tiny_base_dir / "tokenizer.json"))
    assert {"invoice", "ticket"} <= {t.split("Extract the ")[1].split(" ")[0] for t in texts}
    assert calibration_digest(texts) == CALIBRATION["prompts_sha256"]
    assert f"sha256 {CALIBRATION['prompts_sha256']}" in BUILD_RECIPE

    monkeypatch.setitem(CALIBRATION, "prompts_sha256", "0" * 16)  # as if the generator had changed under the recipe
    out = export_onnx(tiny_base_dir, tmp_path / "int8", quantize=True, meta={"version": "tiny-int8"}, drafts=False)
    assert "differs from the recipe's 0000000000000000" in caplog.text
    meta = json.loads((out / META_FILE).read_text())
    assert meta["quantization"]["calibration"]["prompts_sha256"] == calibration_digest(texts)


def test_the_fused_attention_graph_computes_what_the_optimum_graph_computes(tiny_model_dir: Path, tiny_base_dir: Path,
                                                                          tmp_path: Path):
    """The served graph (onnxruntime-genai's builder) against optimum-onnx's export of the same weights.

    Prefill, then a decode call on top of the cache, then a speculative
    three-token call: the logits and the caches must match in fp32.
    """
    reference = export_onnx(tiny_base_dir, tmp_path / "optimum", quantize=False, meta={"version": "tiny-optimum"},
                            graph="optimum", drafts=False)
    served_ops = {n.op_type for n in onnx.load(str(tiny_model_dir / "model.onnx"), load_external_data=False).graph.node}
    assert "GroupQueryAttention" in served_ops

    vocab = TokenVocabulary.from_file(tiny_model_dir / "tokenizer.json")
    ids = vocab.encode("Rechnung Nr. 2024-117, Betrag 1.190,00 EUR, fällig am 15.04.2024")
    gqa, optimum = ModelSession(tiny_model_dir / "model.onnx"), ModelSession(reference / "model.onnx")
    assert not gqa.takes_positions and optimum.takes_positions
    caches = {}
    for session in (gqa, optimum):
        logits, cache = session.forward(ids, session.empty_cache())
        step, cache = session.forward([ids[-1]], cache)
        draft, cache = session.forward(ids[:3], cache)
        caches[session] = (logits, step, draft, cache)
    for ours, theirs in zip(caches[gqa][:3], caches[optimum][:3]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
    assert caches[gqa][3].length == caches[optimum][3].length == len(ids) + 4
    held = caches[gqa][3].length
    for ours, theirs in zip(caches[gqa][3].arrays, caches[optimum][3].arrays):
        np.testing.assert_allclose(ours[:, :, :held], theirs, rtol=1e-3, atol=1e-3)


def test_a_failed_export_says_why_and_leaves_nothing_behind(tmp_path: Path):
    not_a_model = tmp_path / "merged"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("{}")
    out = tmp_path / "models" / "broken"

    with pytest.raises(RuntimeError, match="graph builder failed") as failure:
        export_onnx(not_a_model, out)

    assert "Traceback" in str(failure.value)  # the builder's own words, not just an exit status
    assert list((tmp_path / "models").iterdir()) == []  # no model folder, no half-written work folder


def test_a_cache_written_in_place_answers_what_a_copied_cache_answers(tiny_model_dir: Path):
    """The served session writes keys and values into one buffer; the copying path is the reference.

    Through a prefill, speculative calls whose tails are dropped, one-token
    calls between them (the buffer's binding is kept from call to call, the
    logits' rows are not), and a buffer too small for the document (it must
    grow, keeping what it held).
    """
    in_place, copying = ModelSession(tiny_model_dir / "model.onnx"), ModelSession(tiny_model_dir / "model.onnx")
    copying.in_place = False
    assert in_place.in_place
    vocab = TokenVocabulary.from_file(tiny_model_dir / "tokenizer.json")
    ids = vocab.encode("Order #A-1177 arrived broken; please refund invoice INV-0042 to jane@example.com")

    ours, theirs = in_place.empty_cache(capacity=8), copying.empty_cache()
    got, ours = in_place.forward(ids, ours, keep=1)
    want, theirs = copying.forward(ids, theirs, keep=1)
    np.testing.assert_array_equal(got, want)
    assert ours.capacity >= len(ids) > 8 and ours.length == theirs.length == len(ids)
    for step in range(6):
        draft = ids[step: step + 4]
        got, ours = in_place.forward(draft, ours, keep=4)
        want, theirs = copying.forward(draft, theirs, keep=4)
        np.testing.assert_array_equal(got, want)
        ours, theirs = ours.truncate(ours.length - 2), theirs.truncate(theirs.length - 2)  # two rejected
        assert ours.length == theirs.length
        got, ours = in_place.forward(ids[step: step + 1], ours, keep=1)
        want, theirs = copying.forward(ids[step: step + 1], theirs, keep=1)
        np.testing.assert_array_equal(got, want)
    for held, reference in zip(ours.arrays, theirs.arrays):
        np.testing.assert_array_equal(held[:, :, : ours.length], reference)
