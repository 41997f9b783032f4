"""Engine commands of the ``docket`` CLI: extract, eval, and the training-side entry points.

``train`` and ``bench`` need torch, which the serving install does not have:
they run ``training.cli`` / ``training.bench`` only when invoked, so
``docket worker`` and the API never import the training stack.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import click

from config.settings import get_settings
from service.evaluation import run_eval
from service.extract.engine import Engine
from service.ingest import IngestedDocument, ingest_pdf
from service.splits import split_of
from service.tasks import get_engine


MODEL_OPTION = click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="a model folder to use instead of the registry's active version",
)


def choose_engine(model_dir: Path | None) -> Engine:
    """An explicit model folder, else the registry's active version, else the default model."""
    settings = get_settings()
    return Engine(model_dir, settings) if model_dir else get_engine(settings)


def read_document(path: Path) -> IngestedDocument:
    data = path.read_bytes()
    if data[:5] == b"%PDF-":
        return ingest_pdf(data)
    text = data.decode("utf-8", errors="replace")
    return IngestedDocument(text=text, media_type="text/plain", page_count=text.count("\f") + 1)


@click.command("extract")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "doc_type", default="invoice", show_default=True, help="document type (a schema in config/schemas)")
@click.option("--json", "as_json", is_flag=True, help="print the full result as JSON")
@MODEL_OPTION
def extract(file: Path, doc_type: str, as_json: bool, model_dir: Path | None) -> None:
    """Extract the fields of FILE with the active model."""
    engine = choose_engine(model_dir)
    if doc_type not in engine.doc_types:
        raise click.BadParameter(f"unknown type {doc_type!r}; known: {', '.join(engine.doc_types)}", param_hint="--type")
    result = engine.extract(engine.doc_types[doc_type], read_document(file))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    for name, f in result.fields.items():
        click.echo(f"{name:>16}  {f.confidence:4.2f}  {json.dumps(f.value, ensure_ascii=False)}")
    click.echo(f"model {result.model_version}  {result.timings_ms['total']:.0f} ms  {result.tokens['model_calls']} model calls / {result.tokens['output']} tokens")
    for warning in result.warnings:
        click.echo(f"warning: {warning}")


@click.command("eval")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "doc_type", default=None, help="document type (default: inferred from the labels)")
@click.option("--split", type=click.Choice(["eval", "train", "all"]), default="all", show_default=True, help="the fixed split of ../shared/data to score")
@click.option("--limit", type=int, default=None)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write the report as JSON")
@MODEL_OPTION
def evaluate(dataset: Path, doc_type: str | None, split: str, limit: int | None, out: Path | None, model_dir: Path | None) -> None:
    """Score the active model on DATASET (the normalized.jsonl format of ../shared/data)."""
    engine = choose_engine(model_dir)
    thresholds = engine.meta.get("thresholds") or None

    def extract_fn(type_name: str, source):
        document = read_document(source) if isinstance(source, Path) else IngestedDocument(text=source, media_type="text/plain", page_count=1)
        return engine.extract(engine.doc_types[type_name], document)

    include = None if split == "all" else (lambda e: split_of(e.dataset, e.id) == split)
    report = run_eval(extract_fn, dataset, doc_type, thresholds=thresholds, limit=limit, include=include)
    click.echo(report.to_text())
    if out:
        out.write_text(json.dumps(report.to_dict(include_documents=True), indent=2, ensure_ascii=False, default=str))


def _run_training_module(module: str) -> None:
    sys.argv = [f"docket {module.rsplit('.', 1)[-1]}", *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__")


@click.command("train", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
def train() -> None:
    """Fine-tune a model (needs the training extra). `docket train --help` for options."""
    _run_training_module("training.cli")


@click.command("bench", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
def bench() -> None:
    """Benchmark the engine against the plain transformers + outlines path (needs the training extra)."""
    _run_training_module("training.bench")


COMMANDS = [extract, evaluate, train, bench]
