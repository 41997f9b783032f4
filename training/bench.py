"""`docket bench`: Docket's engine against the plain path, side by side, in one run.

Same documents, same fine-tuned weights, same schema, same prompt:

* docket — the shipped int8 ONNX model, onnxruntime, the hand-written decoder
  (jump-forward, copy speculation, cached masks), no torch;
* plain  — the merged fp32 model in transformers + torch with the high-level
  ``outlines`` JSON-schema generator, greedy.

Reports p50/p95 latency per document and type, model calls per output token,
and the share of Docket's wall time spent computing masks.

Usage: docket bench [--invoices N] [--tickets N] [--no-plain] [--out report.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from config.settings import get_settings  # noqa: E402
from service.extract.artifacts import DEFAULT_ADAPTER_DIR  # noqa: E402
from service.extract.engine import load_engine  # noqa: E402
from service.extract.prompt import build_prompt, fit_to_budget  # noqa: E402
from service.ingest import IngestedDocument, ingest_pdf  # noqa: E402
from service.splits import split_of  # noqa: E402
from training.dataset import SHARED_DATA  # noqa: E402


def documents(invoices: int, tickets: int) -> list[tuple[str, str, IngestedDocument]]:
    """One-page invoice2data PDFs and evaluation-split Bitext tickets."""
    docs = []
    for pdf in sorted((SHARED_DATA / "invoice2data").glob("*.pdf")):
        doc = ingest_pdf(pdf.read_bytes())
        if doc.page_count == 1 and len(docs) < invoices:
            docs.append((pdf.stem, "invoice", doc))
    rows = [json.loads(line) for line in (SHARED_DATA / "bitext" / "normalized.jsonl").read_text().splitlines()]
    rows = [r for r in rows if split_of("bitext", r["id"]) == "eval"][:tickets]
    docs += [(r["id"], "ticket", IngestedDocument(text=r["text"], media_type="text/plain", page_count=1)) for r in rows]
    return docs


def percentile(values: list[float], q: float) -> float:
    """Interpolated between the two nearest ranks (numpy's default): the p50 of six documents
    is the mean of the third and fourth, not the third (which flattered it)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


class PlainPath:
    """transformers + torch + outlines, as a team without Docket's decoder would write it."""

    def __init__(self, adapter_dir: Path, threads: int):
        import torch
        import outlines
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from training.base import ensure_base
        from training.merge import merge_adapter

        torch.set_num_threads(threads)
        self._tmp = tempfile.TemporaryDirectory(prefix="docket-bench-")
        merged = merge_adapter(adapter_dir, Path(self._tmp.name) / "merged", ensure_base())
        self.tokenizer = AutoTokenizer.from_pretrained(merged)
        hf_model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
        self.model = outlines.from_transformers(hf_model, self.tokenizer)
        self._outlines = outlines
        self._generators: dict[str, object] = {}

    def extract(self, doc_type, prompt: str, max_new_tokens: int) -> tuple[str, int]:
        from outlines.types import JsonSchema

        if doc_type.name not in self._generators:
            self._generators[doc_type.name] = self._outlines.Generator(self.model, JsonSchema(doc_type.decode_schema_json))
        out = self._generators[doc_type.name](prompt, max_new_tokens=max_new_tokens, do_sample=False)
        return out, len(self.tokenizer.encode(out, add_special_tokens=False))


def _rounded(row: dict) -> dict:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def warm_up(engine, plain: PlainPath | None, docs, settings) -> None:
    """Load each type's index and mask tables on both paths, untimed."""
    types = list(dict.fromkeys(t for _, t, _ in docs))
    if plain:  # the plain path first: Docket's documents are timed next
        for type_name in types:
            plain.extract(engine.doc_types[type_name], build_prompt(engine.doc_types[type_name], "warm-up"), 8)
    for type_name in types:
        doc_type = engine.doc_types[type_name]
        engine.extract(doc_type, next(d for _, t, d in docs if t == type_name))


def main() -> None:
    parser = argparse.ArgumentParser(prog="docket bench", description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=6)
    parser.add_argument("--tickets", type=int, default=10)
    parser.add_argument("--no-plain", action="store_true", help="time Docket alone")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    settings = get_settings()
    engine = load_engine(settings)
    docs = documents(args.invoices, args.tickets)
    threads = os.cpu_count() or 1
    plain = None if args.no_plain else PlainPath(DEFAULT_ADAPTER_DIR, threads)

    warm_up(engine, plain, docs, settings)
    # Docket's documents first, then the plain path's: torch's idle OpenMP threads
    # spin after its calls and took about 15% of the two cores from a Docket
    # document timed right after a plain one (OMP_WAIT_POLICY=PASSIVE removed
    # that but made the plain path 1.3x slower).
    rows = []
    for name, type_name, doc in docs:
        doc_type = engine.doc_types[type_name]
        t0 = time.perf_counter()
        result = engine.extract(doc_type, doc)
        docket_s = time.perf_counter() - t0
        row = {
            "doc": name,
            "type": type_name,
            "docket_s": docket_s,
            "docket_calls": result.tokens["model_calls"],
            "docket_tokens": result.tokens["output"],
            "docket_mask_share": result.timings_ms["mask"] / result.timings_ms["total"],
        }
        rows.append(row)
        print(json.dumps(_rounded(row)), flush=True)
    if plain:
        for row, (name, type_name, doc) in zip(rows, docs):
            doc_type = engine.doc_types[type_name]
            fitted = fit_to_budget(doc.text.split("\f"), engine.count_tokens, settings.max_prompt_tokens)
            t0 = time.perf_counter()
            _, tokens = plain.extract(doc_type, build_prompt(doc_type, fitted.text), settings.max_new_tokens)
            row["plain_s"] = time.perf_counter() - t0
            row["plain_tokens"] = tokens
            print(json.dumps(_rounded({"doc": name, "plain_s": row["plain_s"], "plain_tokens": tokens})), flush=True)

    summary = {"device": "cpu", "threads": threads, "model": engine.model_version, "by_type": {}}
    for type_name in sorted({r["type"] for r in rows}):
        sel = [r for r in rows if r["type"] == type_name]
        entry = {
            "documents": len(sel),
            "docket_p50_s": round(percentile([r["docket_s"] for r in sel], 0.5), 3),
            "docket_p95_s": round(percentile([r["docket_s"] for r in sel], 0.95), 3),
            "docket_calls_per_token": round(sum(r["docket_calls"] for r in sel) / sum(r["docket_tokens"] for r in sel), 3),
            "docket_mask_share": round(statistics.mean(r["docket_mask_share"] for r in sel), 4),
        }
        if plain:
            entry["plain_p50_s"] = round(percentile([r["plain_s"] for r in sel], 0.5), 3)
            entry["plain_p95_s"] = round(percentile([r["plain_s"] for r in sel], 0.95), 3)
            entry["plain_calls_per_token"] = 1.0  # one forward pass per generated token
            entry["speedup_p50"] = round(entry["plain_p50_s"] / entry["docket_p50_s"], 2)
        summary["by_type"][type_name] = entry
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "documents": rows}, indent=2))


if __name__ == "__main__":
    main()
