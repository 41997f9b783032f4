"""Frontier models: a second opinion on a document, through the providers' official SDKs.

:class:`OpenAIClient` speaks OpenAI chat completions with structured outputs
(``response_format`` json_schema, strict), so it also talks to any
OpenAI-compatible server (vLLM, llama.cpp, Ollama) through ``base_url``.
:class:`AnthropicClient` speaks Anthropic messages with one tool whose
``input_schema`` is the document schema and ``tool_choice`` forcing it.

Both ask for the document type's API-level schema (numbers as numbers, dates
ISO), derived generically by :func:`strict_schema`. Every answer is parsed,
normalised field by field (:func:`service.normalize.normalize_field`) and
validated with jsonschema against :attr:`DocumentType.schema`; one that does
not parse or validate is a failure like a timeout.

Resilience: the SDK's own retries (exponential backoff, honouring
``retry-after``) on 408/409/429/5xx and timeouts, a per-attempt timeout, and a
circuit breaker (pybreaker) around the whole call — bad answers included —
that stops calling a provider that keeps failing. Every failure is a
:class:`service.exceptions.FrontierError` subclass; the job turns it into
"route to review". Keys live in :class:`pydantic.SecretStr` and are only
unwrapped when the SDK client is built; error messages are written here,
never copied from a response.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anthropic
import jsonschema
import openai
import pybreaker

from config.settings import Settings
from service.doctypes import DocumentType
from service.exceptions import (
    FrontierCircuitOpen,
    FrontierConfigError,
    FrontierError,
    FrontierInvalidAnswer,
    FrontierRejected,
    FrontierSchemaViolation,
    FrontierTimeout,
    FrontierUnavailable,
)
from service.normalize import normalize_field

__all__ = [
    "AnthropicClient",
    "FrontierAnswer",
    "FrontierClient",
    "OpenAIClient",
    "Price",
    "load_price",
    "make_frontier_client",
    "parse_answer",
    "strict_schema",
]

log = logging.getLogger(__name__)

# JSON Schema keywords OpenAI's strict structured outputs accept (and Anthropic's tools read).
STRICT_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf", "description", "pattern",
     "format", "const"}
)
# String formats strict mode knows; other formats ("iban", "vat-id") move into the description.
STRICT_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})

SYSTEM_PROMPT = (
    "You extract structured data from business documents. Answer with the fields of the schema only, "
    "copying values as the document states them: dates as YYYY-MM-DD, amounts as plain numbers without "
    "currency signs or thousands separators, codes in their standard form. Use null for anything the "
    "document does not state; never guess."
)


# ------------------------------------------------------------------ prices


@dataclass(frozen=True)
class Price:
    """USD per one million input and output tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


def load_price(path: Path, provider: str, model: str) -> Price | None:
    """The listed price of *model*: its exact name, else the longest listed name it starts with."""
    table = json.loads(Path(path).read_text(encoding="utf-8")).get(provider, {})
    name = model if model in table else max((m for m in table if model.startswith(m)), key=len, default=None)
    if name is None:
        return None
    return Price(float(table[name]["input"]), float(table[name]["output"]))


def price_for(settings: Settings) -> Price:
    """The price the settings name: explicit per-token prices win over the table."""
    explicit = (settings.frontier_price_input_per_mtok, settings.frontier_price_output_per_mtok)
    if all(p is not None for p in explicit):
        return Price(float(explicit[0]), float(explicit[1]))
    listed = load_price(settings.frontier_prices_path, settings.frontier_provider, settings.frontier_model)
    if listed is None:
        raise FrontierConfigError(
            f"No price for {settings.frontier_provider} model {settings.frontier_model!r} in "
            f"{settings.frontier_prices_path}; add it there or set DOCKET_FRONTIER_PRICE_INPUT_PER_MTOK "
            "and DOCKET_FRONTIER_PRICE_OUTPUT_PER_MTOK."
        )
    return listed


# ------------------------------------------------------------------ schemas


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A strict-mode compatible copy of a document schema.

    Only keywords strict mode accepts are kept; every object lists all its
    properties as required and forbids others (a property that was optional
    becomes nullable instead); formats strict mode does not know are dropped
    and named in the description, so the model still reads them.
    """
    out = _strict_node(schema)
    out["type"] = "object"
    return out


def _strict_node(node: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in node.items() if k in STRICT_KEYWORDS and k not in ("properties", "items", "anyOf")}
    fmt = out.get("format")
    if fmt is not None and fmt not in STRICT_FORMATS:
        del out["format"]
        out["description"] = f"{out.get('description', '')} Format: {fmt}.".strip()
    if "anyOf" in node:
        out["anyOf"] = [_strict_node(option) for option in node["anyOf"]]
    if "items" in node:
        out["items"] = _strict_node(node["items"])
    if "properties" in node:
        required = set(node.get("required", ()))
        props = {}
        for name, sub in node["properties"].items():
            props[name] = _strict_node(sub)
            if name not in required:
                _make_nullable(props[name])
        out["properties"] = props
        out["required"] = list(props)
        out["additionalProperties"] = False
    types = out.get("type")
    if "enum" in out and (types == "null" or (isinstance(types, list) and "null" in types)) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _make_nullable(node: dict[str, Any]) -> None:
    types = node.get("type")
    if isinstance(types, str) and types != "null":
        node["type"] = [types, "null"]
    elif isinstance(types, list) and "null" not in types:
        node["type"] = [*types, "null"]
    elif types is None and "anyOf" in node:
        node["anyOf"].append({"type": "null"})
    if "enum" in node and None not in node["enum"]:
        node["enum"] = [*node["enum"], None]


def api_schema(doc_type: DocumentType) -> dict[str, Any]:
    """The document schema without Docket's own extension keywords."""
    return {k: v for k, v in doc_type.schema.items() if not k.startswith("x-")}


def schema_name(doc_type: DocumentType) -> str:
    """A name both providers accept for a schema or tool (``^[a-zA-Z0-9_-]{1,64}$``)."""
    return ("record_" + re.sub(r"[^a-zA-Z0-9_-]", "_", doc_type.name))[:64]


# ------------------------------------------------------------------ answers


@dataclass
class FrontierAnswer:
    """One frontier model's reading of a document: normalised values, what it wrote, what it cost."""

    values: dict[str, Any]
    raw_json: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    provider: str = ""
    model: str = ""
    raw_values: dict[str, Any] = field(default_factory=dict)


def parse_answer(doc_type: DocumentType, payload: str | dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(normalised values, raw values)`` from a JSON text or object; raises on anything unusable."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (json.JSONDecodeError, RecursionError):
            raise FrontierInvalidAnswer("The frontier answer is not JSON.") from None
    if not isinstance(payload, dict):
        raise FrontierInvalidAnswer(f"The frontier answer is a JSON {type(payload).__name__}, not an object.")
    specs = {spec.name: spec for spec in doc_type.fields}
    values = {name: normalize_field(specs[name], raw) if name in specs else raw for name, raw in payload.items()}
    errors = sorted(jsonschema.Draft202012Validator(api_schema(doc_type)).iter_errors(values), key=lambda e: e.path)
    if errors:
        where = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.validator}" for e in errors[:5])
        raise FrontierSchemaViolation(f"The frontier answer violates the {doc_type.name} schema ({where}).")
    return values, payload


# ------------------------------------------------------------------ clients


class FrontierClient(Protocol):
    provider: str
    model: str
    price: Price

    def extract(self, doc_type: DocumentType, text: str) -> FrontierAnswer: ...


@dataclass
class _Reply:
    """What a provider returned, before parsing: the JSON text or object, and usage."""

    payload: str | dict[str, Any] | None
    input_tokens: int
    output_tokens: int
    problem: str | None = None  # why the reply is unusable although the call succeeded (refusal, truncation)


class _Client:
    """What both providers share: timing, the breaker, error mapping, parsing and cost."""

    provider = ""
    _sdk: Any = None  # the SDK module, for its exception classes

    def __init__(self, model: str, price: Price, breaker: pybreaker.CircuitBreaker | None = None,
                 max_output_tokens: int = 2048) -> None:
        if not model:
            raise FrontierConfigError(f"No model configured for the {self.provider} frontier (DOCKET_FRONTIER_MODEL).")
        self.model = model
        self.price = price
        self.max_output_tokens = max_output_tokens
        self.breaker = breaker or pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)

    def extract(self, doc_type: DocumentType, text: str) -> FrontierAnswer:
        """Ask the frontier model for every field of *doc_type* in *text*."""
        started = time.perf_counter()
        try:
            return self.breaker.call(self._extract, doc_type, text, started)
        except pybreaker.CircuitBreakerError:
            raise FrontierCircuitOpen(f"{self.provider}: circuit open after repeated failures; not called.") from None

    def _extract(self, doc_type: DocumentType, text: str, started: float) -> FrontierAnswer:
        try:
            reply = self._request(doc_type, text)
        except self._sdk.APITimeoutError:
            raise FrontierTimeout(f"{self.provider}: no answer within the timeout, after retries.") from None
        except self._sdk.APIConnectionError:
            raise FrontierUnavailable(f"{self.provider}: the server cannot be reached.") from None
        except self._sdk.APIStatusError as exc:
            raise _status_error(self.provider, exc.status_code) from None
        cost = self.price.cost(reply.input_tokens, reply.output_tokens)
        usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens, "cost_usd": cost}
        if reply.problem:
            raise FrontierInvalidAnswer(f"{self.provider}: {reply.problem}", **usage)
        try:
            values, raw = parse_answer(doc_type, reply.payload if reply.payload is not None else "")
        except FrontierError as exc:
            raise type(exc)(f"{self.provider}: {exc.detail}", **usage) from None
        raw_json = reply.payload if isinstance(reply.payload, str) else json.dumps(reply.payload, ensure_ascii=False)
        return FrontierAnswer(
            values=values,
            raw_json=raw_json,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cost_usd=cost,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            provider=self.provider,
            model=self.model,
            raw_values=raw,
        )

    def _request(self, doc_type: DocumentType, text: str) -> _Reply:
        raise NotImplementedError


def _status_error(provider: str, status: int) -> FrontierError:
    if status == 429:
        return FrontierUnavailable(f"{provider}: rate limited (HTTP 429) after retries.")
    if status >= 500 or status in (408, 409):
        return FrontierUnavailable(f"{provider}: HTTP {status} after retries.")
    return FrontierRejected(f"{provider}: the request was refused (HTTP {status}).")


def _instructions(doc_type: DocumentType) -> str:
    what = f" The document is of type {doc_type.name!r}: {doc_type.description}" if doc_type.description else ""
    return SYSTEM_PROMPT + what


class OpenAIClient(_Client):
    """OpenAI chat completions with a strict json_schema response format (or any compatible server)."""

    provider = "openai"
    _sdk = openai

    def __init__(self, model: str, price: Price, api_key: str = "", base_url: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 2, **kwargs: Any) -> None:
        super().__init__(model, price, **kwargs)
        # Self-hosted servers take no key, but the SDK insists on one.
        self.client = openai.OpenAI(api_key=api_key or "unused", base_url=base_url or None,
                                    timeout=timeout_s, max_retries=max_retries)

    def _request(self, doc_type: DocumentType, text: str) -> _Reply:
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": _instructions(doc_type)}, {"role": "user", "content": text}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": schema_name(doc_type), "schema": strict_schema(doc_type.schema), "strict": True},
            },
            max_completion_tokens=self.max_output_tokens,
        )
        usage = response.usage
        tokens = (int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)) if usage else (0, 0)
        if not response.choices:
            return _Reply(None, *tokens, problem="the answer has no choices")
        choice = response.choices[0]
        if getattr(choice.message, "refusal", None):
            return _Reply(None, *tokens, problem="the model refused to answer")
        if choice.finish_reason == "length":
            return _Reply(None, *tokens, problem="the answer was cut off at the token limit")
        return _Reply(choice.message.content or "", *tokens)


class AnthropicClient(_Client):
    """Anthropic messages with one forced tool whose input schema is the document schema."""

    provider = "anthropic"
    _sdk = anthropic

    def __init__(self, model: str, price: Price, api_key: str = "", base_url: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 2, **kwargs: Any) -> None:
        super().__init__(model, price, **kwargs)
        self.client = anthropic.Anthropic(api_key=api_key or "unused", base_url=base_url or None,
                                          timeout=timeout_s, max_retries=max_retries)

    def _request(self, doc_type: DocumentType, text: str) -> _Reply:
        tool = schema_name(doc_type)
        response = self.client.messages.create(
            model=self.model,
            max_tokens=self.max_output_tokens,
            system=_instructions(doc_type),
            messages=[{"role": "user", "content": text}],
            tools=[{
                "name": tool,
                "description": f"Record the fields of one {doc_type.name} document.",
                "input_schema": strict_schema(doc_type.schema),
            }],
            tool_choice={"type": "tool", "name": tool},
        )
        usage = response.usage
        tokens = (int(usage.input_tokens or 0), int(usage.output_tokens or 0)) if usage else (0, 0)
        if response.stop_reason == "max_tokens":
            return _Reply(None, *tokens, problem="the answer was cut off at the token limit")
        for block in response.content:
            if block.type == "tool_use" and block.name == tool:
                return _Reply(block.input, *tokens)
        return _Reply(None, *tokens, problem="the answer does not use the extraction tool")


CLIENTS: dict[str, type[_Client]] = {"openai": OpenAIClient, "anthropic": AnthropicClient}


def make_frontier_client(settings: Settings, listeners: list[pybreaker.CircuitBreakerListener] | None = None
                         ) -> FrontierClient | None:
    """The client the settings configure, or None when escalation is off (provider "none")."""
    if settings.frontier_provider == "none":
        return None
    breaker = pybreaker.CircuitBreaker(
        fail_max=settings.frontier_breaker_fail_max,
        reset_timeout=settings.frontier_breaker_reset_s,
        name=f"frontier-{settings.frontier_provider}",
        listeners=listeners,
        throw_new_error_on_trip=False,  # the call that trips it reports its own failure
    )
    return CLIENTS[settings.frontier_provider](
        settings.frontier_model,
        price_for(settings),
        api_key=settings.frontier_api_key.get_secret_value(),
        base_url=settings.frontier_base_url or None,
        timeout_s=settings.frontier_timeout_s,
        max_retries=settings.frontier_max_retries,
        breaker=breaker,
        max_output_tokens=settings.frontier_max_output_tokens,
    )

