"""The extraction engine: document in, fields with confidence and evidence out.

    prompt → constrained decode → spans → normalise → evidence → confidence

Plain data in and out; the engine holds one onnxruntime session, the
tokenizer and a state table per document type, and is safe to reuse for many
documents in one process (not from several threads at once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import time
from pathlib import Path
from typing import Any

from outlines_core import Index
from outlines_core.json_schema import build_regex_from_schema

from config.settings import Settings
from service.doctypes import DocumentType, FieldSpec, load_document_types, printed_pattern
from service.extract.artifacts import META_FILE, MODEL_FILE, resolve_model_dir
from service.extract.copying import PRINTED_WORDS, PrintedShape
from service.extract.confidence import NOT_FOUND_FACTOR, Calibration, raw_confidence
from service.extract.currency import evidence_for, printed_currencies, the_currency
from service.extract.decoder import Decoder, DecodeResult, StateTable
from service.extract.evidence import find_span
from service.extract.prompt import build_prompt, empty_answer, fit_to_budget, prompt_head
from service.extract.result import Evidence, Extraction, FieldResult
from service.extract.session import ModelSession
from service.extract.spans import token_spans, value_spans
from service.extract.vocabulary import TokenVocabulary
from service.ingest import IngestedDocument
from service.normalize import normalize_date, normalize_field
from service.validate import is_iban

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
COPIED_KINDS = ("string", "number", "date")  # values the model copies from the text
CURRENCY_FORMAT = "iso4217"  # codes whose evidence is the symbol or code the text prints


# Formats copied whole from the text, and what says a printed run of the shape is one: an IBAN's
# ISO 7064 check digits (a national check that fails is the validation rule's to report, not a reason not to copy).
COPIED_FORMATS = {"iban": lambda printed: True if is_iban(printed, check_country=False) else None}


def copy_shapes(doc_type: DocumentType) -> dict[str, PrintedShape]:
    """Keys (at any depth) whose values must be printed in the document, with their shape.

    Dates and IBANs are copied, never composed: a model that has the shape
    right writes "AT24 6678 0852 ..." from digits nearby as readily as the
    IBAN the page prints, or starts on the BIC under it. Free text marked
    printed (a line item's description) is copied as a run of printed words.
    """
    specs = [*doc_type.fields, *(item for spec in doc_type.fields for item in spec.items)]
    shapes = {}
    for spec in specs:
        if spec.printed_words:
            shapes[spec.name] = PRINTED_WORDS
            continue
        reads = normalize_date if spec.kind == "date" else COPIED_FORMATS.get(spec.format or "")
        if reads is not None:
            shapes[spec.name] = PrintedShape(printed_pattern(spec), reads)
    return shapes


class ModelNotFound(RuntimeError):
    """No model folder where settings point; ``make model`` builds the default one."""


def load_index(doc_type: DocumentType, vocab: TokenVocabulary, cache_dir: Path) -> Index:
    """The outlines-core index for a schema and tokenizer, built once and kept on disk."""
    key = hashlib.sha256(doc_type.decode_schema_json.encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{doc_type.name}-{key}-{vocab.fingerprint}.index"
    if path.exists():
        try:
            return pickle.loads(path.read_bytes())
        except Exception:  # a stale or torn cache file is rebuilt, never trusted
            log.warning("rebuilding unreadable index cache %s", path)
    index = Index(build_regex_from_schema(doc_type.decode_schema_json, ""), vocab.outlines_vocabulary())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{time.time_ns()}.tmp")
    tmp.write_bytes(pickle.dumps(index))
    tmp.replace(path)
    return index


def read_meta(model_dir: Path) -> dict[str, Any]:
    """A model folder's ``docket-model.json`` (version, calibration, thresholds), or {} without one."""
    path = Path(model_dir) / META_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def model_version_of(model_dir: Path) -> str | None:
    """The version a model folder serves as, read without loading it; None when there is no model there."""
    model_dir = Path(model_dir)
    if not (model_dir / MODEL_FILE).exists():
        return None
    return read_meta(model_dir).get("version") or model_dir.name


class Engine:
    def __init__(self, model_dir: Path, settings: Settings):
        model_dir = Path(model_dir)
        if not (model_dir / MODEL_FILE).exists():
            raise ModelNotFound(f"no model at {model_dir}: run `make model` to build the default model")
        self.model_dir = model_dir
        self.settings = settings
        self.meta: dict[str, Any] = read_meta(model_dir)
        self.model_version: str = self.meta.get("version") or model_dir.name
        self.calibration = Calibration.from_dict(self.meta.get("calibration"))
        self.vocab = TokenVocabulary.from_file(model_dir / TOKENIZER_FILE)
        self.session = ModelSession(model_dir / MODEL_FILE, settings.use_cuda, settings.intra_op_threads)
        self.doc_types = load_document_types(settings.schema_dir)
        self._decoders: dict[str, Decoder] = {}

    def decoder(self, doc_type: DocumentType) -> Decoder:
        if doc_type.name not in self._decoders:
            index = load_index(doc_type, self.vocab, self.settings.var_dir / "index-cache")
            self._decoders[doc_type.name] = Decoder(
                self.session,
                StateTable(index, self.vocab),
                speculate_tokens=self.settings.speculate_tokens,
                top_level_fields=len(doc_type.fields),
                copy_shapes=copy_shapes(doc_type),
                cues={spec.name: spec.cue for spec in doc_type.fields if spec.cue},
                skeleton=empty_answer(doc_type).encode("utf-8"),
                answers=[a.encode("utf-8") for a in self.meta.get("draft_answers", {}).get(doc_type.name, [])],
                prompt_head=self.vocab.encode(prompt_head(doc_type)),
            )
        return self._decoders[doc_type.name]

    def count_tokens(self, text: str) -> int:
        return len(self.vocab.encode(text))

    def extract(self, doc_type: DocumentType, document: IngestedDocument, speculate: bool = True) -> Extraction:
        started = time.perf_counter()
        pages = document.text.split("\f")
        fitted = fit_to_budget(pages, self.count_tokens, self.settings.max_prompt_tokens)
        warnings = []
        if fitted.omitted_pages:
            warnings.append(f"pages {', '.join(map(str, fitted.omitted_pages))} left out: context budget")
        if fitted.cut_page:
            warnings.append(f"page {fitted.cut_page} truncated at the context budget")
        prompt_ids = self.vocab.encode(build_prompt(doc_type, fitted.text))
        result = self.decoder(doc_type).decode(
            prompt_ids, self.settings.max_new_tokens, fitted.text.encode("utf-8"), speculate=speculate
        )
        if result.complete:
            fields, cut = self._fields(doc_type, document, result)
        else:  # the token cap is smaller than the schema needs: nothing here is trustworthy
            fields, cut = self._nothing(doc_type), []
            warnings.append(f"output truncated at the token cap ({self.settings.max_new_tokens} tokens)")
        # A runaway value (the model looping) is the model's failure, not the
        # document's: worded so routing does not treat it as truncation, which a
        # frontier model reading the whole text can settle.
        warnings += [f"{name}: value closed early at the decoding limits" for name in cut]
        timings = dict(result.timings_ms)
        timings["total"] = (time.perf_counter() - started) * 1000
        return Extraction(
            doc_type=doc_type.name,
            fields=fields,
            model_version=self.model_version,
            timings_ms=timings,
            tokens={
                "prompt": result.prompt_tokens,
                "prompt_head_cached": result.head_tokens,
                "output": len(result.tokens),
                "model_calls": result.model_calls,
                "proposed": result.proposed,
                "accepted": result.accepted,
            },
            warnings=warnings,
            raw_json=self.vocab.decode_bytes(result.tokens).decode("utf-8", errors="replace"),
        )

    @staticmethod
    def _nothing(doc_type: DocumentType) -> dict[str, FieldResult]:
        return {
            spec.name: FieldResult(value=[] if spec.kind == "array" else None, confidence=0.0, problems=["cut_off"])
            for spec in doc_type.fields
        }

    def _fields(self, doc_type: DocumentType, document: IngestedDocument, result: DecodeResult) -> tuple[dict[str, FieldResult], list[str]]:
        pieces = [self.vocab.token_bytes[t] or b"" for t in result.tokens]
        data = b"".join(pieces)
        parsed = json.loads(data.decode("utf-8"))
        spans = value_spans(data)
        tok_spans = token_spans(pieces)
        cut_fields: list[str] = []

        def probe(span: tuple[int, int]) -> tuple[list[float], bool]:
            a, b = span
            probs, was_cut = [], False
            for (s, e), p, forced, cut in zip(tok_spans, result.probs, result.forced, result.cut):
                if s < b and e > a:
                    if not forced:
                        probs.append(p)
                    was_cut |= cut
            return probs, was_cut

        has_currency = any(spec.format == CURRENCY_FORMAT for spec in doc_type.fields)
        marks = printed_currencies(document.text) if has_currency else []

        def leaf(spec: FieldSpec, raw: Any, span: tuple[int, int], hint: int) -> tuple[FieldResult, int]:
            probs, was_cut = probe(span)
            value = normalize_field(spec, raw)
            problems = ["cut_off"] if was_cut else []
            if spec.format == CURRENCY_FORMAT:
                value, raw, found_span, score = _read_currency(value, raw, probs, was_cut, marks, document.text, problems)
            elif raw is None:  # a null is doubtful where the text prints what introduces the field
                found_span = None
                cue = spec.cue.search(document.text) if spec.cue else None
                if cue:
                    problems.append("null_but_label_printed")
                score = raw_confidence(probs, cue is not None, False)
            else:
                expected = spec.kind in COPIED_KINDS
                found_span = find_span(str(raw), document.text, hint) if expected else None
                score = raw_confidence(probs, expected, found_span is not None)
                hint = found_span[1] if found_span else hint
            evidence = None
            if found_span:
                a, b = found_span
                evidence = Evidence(a, b, document.page_of(a), document.text[a:b])
            confidence = 0.0 if was_cut else self.calibration(score)
            if raw is not None and value is None:
                problems.append("unreadable")
            return FieldResult(value=value, raw=raw, confidence=confidence, evidence=evidence, problems=problems), hint

        fields: dict[str, FieldResult] = {}
        for spec in doc_type.fields:
            raw = parsed.get(spec.name)
            if spec.kind != "array":
                fields[spec.name], _ = leaf(spec, raw, spans[spec.name], 0)
                if "cut_off" in fields[spec.name].problems:
                    cut_fields.append(spec.name)
                continue
            rows, hint = [], 0  # rows follow each other in the text: search onwards
            for row_raw, row_spans in zip(raw or [], spans[spec.name]):
                row: dict[str, FieldResult] = {}
                for item in spec.items:
                    row[item.name], hint = leaf(item, row_raw.get(item.name), row_spans[item.name], hint)
                rows.append(row)
            cells = [cell for row in rows for cell in row.values()]
            if any("cut_off" in cell.problems for cell in cells):
                cut_fields.append(spec.name)
            # An empty list is as certain as the decision to close it at once.
            confidence = min(c.confidence for c in cells) if cells else self.calibration(raw_confidence(probe(spans[spec.name].span)[0], False, False))
            fields[spec.name] = FieldResult(
                value=[{k: v.value for k, v in r.items()} for r in rows],
                raw=raw,
                confidence=confidence,
                items=rows,
            )
        return fields, cut_fields


def _read_currency(value, raw, probs, was_cut, marks, text, problems) -> tuple[Any, Any, tuple[int, int] | None, float]:
    """A currency code, its evidence span (the mark the text prints for it) and its raw score.

    The model's null stands only where the text prints no single currency;
    otherwise the printed one is the value (a bare "$" at reduced
    confidence), flagged ``currency_from_text`` in *problems* for the reviewer.
    """
    mark = evidence_for(value, marks) if value else None
    if value is None and not was_cut and (printed := the_currency(marks)) is not None:
        mark, value, raw = printed, printed.code, text[printed.start : printed.end]
        problems.append("currency_from_text")
        score = raw_confidence([], True, True) * (NOT_FOUND_FACTOR if printed.assumed else 1.0)
    else:
        score = raw_confidence(probs, value is not None, mark is not None)
    return value, raw, ((mark.start, mark.end) if mark else None), score


def load_engine(settings: Settings) -> Engine:
    return Engine(resolve_model_dir(settings), settings)
