"""Frontier clients over HTTP: the real openai and anthropic SDKs against loopback servers."""

from __future__ import annotations

import json
import logging
import time

import jsonschema
import pybreaker
import pytest

from config.settings import ROOT, Settings
from service.doctypes import DocumentType, load_document_types
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
from service.frontier import Price, load_price, make_frontier_client, parse_answer, price_for, strict_schema
from tests.frontier_servers import (  # noqa: F401  (fixtures)
    KEY,
    PRICE,
    anthropic_answers,
    anthropic_client,
    anthropic_server,
    fails,
    anthropic_message,
    hangs,
    json_response,
    loopback,
    openai_answers,
    openai_client,
    openai_completion,
    openai_server,
)

TYPES = load_document_types(ROOT / "config" / "schemas")
INVOICE = TYPES["invoice"]
TICKET = TYPES["ticket"]

INVOICE_ANSWER = {
    "vendor_name": "Azure Interior",
    "vendor_address": "4557 De Silva St, Fremont, CA 94538",
    "vendor_tax_id": None,
    "buyer_name": "Deco Addict",
    "invoice_number": "INV/2023/00003",
    "invoice_date": "2023-03-31",
    "due_date": "2023-04-30",
    "purchase_order": None,
    "currency": "usd",
    "subtotal": 4000.0,
    "tax": 600.0,
    "total": 4600.0,
    "amount_due": 4600.0,
    "iban": None,
    "line_items": [
        {"description": "Desk", "quantity": 2, "unit_price": 1500.0, "amount": 3000.0},
        {"description": "Chair", "quantity": 4, "unit_price": 250.0, "amount": 1000.0},
    ],
}
TEXT = "INVOICE INV/2023/00003 Azure Interior ... Total $4,600.00"


# --- schema ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TYPES))
def test_strict_schema_is_strict_and_accepts_what_the_api_schema_accepts(name):
    doc_type = TYPES[name]
    schema = strict_schema(doc_type.schema)
    jsonschema.Draft202012Validator.check_schema(schema)

    def walk(node):
        assert set(node) <= {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf",
                             "description", "pattern", "format", "const"}
        if "properties" in node:
            assert node["required"] == list(node["properties"]) and node["additionalProperties"] is False
            for sub in node["properties"].values():
                walk(sub)
        if "items" in node:
            walk(node["items"])
    walk(schema)
    assert "x-docket-rules" not in schema and "$schema" not in schema
    # Formats strict mode does not know are named in the description instead of lost.
    for spec in doc_type.fields:
        if spec.format and spec.format not in ("date", "email"):
            assert spec.format in schema["properties"][spec.name]["description"]


def test_strict_schema_makes_optional_properties_nullable_and_keeps_enums_legal():
    doc = DocumentType.from_schema("memo", {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["a", "b"]},
            "note": {"type": "string", "minLength": 3},
        },
        "required": ["kind"],
    })
    schema = strict_schema(doc.schema)
    assert schema["required"] == ["kind", "note"]
    assert schema["properties"]["note"] == {"type": ["string", "null"]}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"kind": "a", "note": None})
    assert not validator.is_valid({"kind": "c", "note": None})


def test_parse_answer_normalises_then_validates():
    values, raw = parse_answer(INVOICE, json.dumps(INVOICE_ANSWER))
    assert values["currency"] == "USD" and raw["currency"] == "usd"
    assert values["line_items"][1]["amount"] == 1000.0
    with pytest.raises(FrontierInvalidAnswer):
        parse_answer(INVOICE, "{'vendor_name': 'no'")
    with pytest.raises(FrontierInvalidAnswer):
        parse_answer(INVOICE, "[1, 2]")
    with pytest.raises(FrontierSchemaViolation, match="total"):
        parse_answer(INVOICE, {**INVOICE_ANSWER, "total": "a lot"})
    with pytest.raises(FrontierSchemaViolation):
        parse_answer(INVOICE, {k: v for k, v in INVOICE_ANSWER.items() if k != "invoice_date"})
    with pytest.raises(FrontierSchemaViolation):
        parse_answer(TICKET, {"category": "weather", "priority": "low", "sentiment": "neutral", "language": "en",
                              "summary": "x", "customer_name": None, "customer_email": None, "order_id": None,
                              "invoice_id": None, "product": None})


# --- prices ------------------------------------------------------------------


def test_price_table_lookup_and_cost(tmp_path):
    path = ROOT / "config" / "prices.json"
    assert load_price(path, "openai", "gpt-4o-mini") == Price(0.15, 0.60)
    assert load_price(path, "openai", "gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)  # longest prefix wins
    assert load_price(path, "openai", "gpt-4o-2024-08-06") == Price(2.50, 10.00)
    assert load_price(path, "anthropic", "claude-haiku-4-5-20251001").output_per_mtok == 5.00
    assert load_price(path, "openai", "llama-3.1-8b") is None
    assert Price(2.5, 10.0).cost(1_000_000, 100_000) == pytest.approx(3.5)

    unlisted = Settings(frontier_provider="openai", frontier_model="llama-3.1-8b")
    with pytest.raises(FrontierConfigError, match="llama-3.1-8b"):
        price_for(unlisted)
    own = unlisted.model_copy(update={"frontier_price_input_per_mtok": 0.0, "frontier_price_output_per_mtok": 0.0})
    assert price_for(own) == Price(0.0, 0.0)


def test_no_provider_means_no_client():
    assert make_frontier_client(Settings(frontier_provider="none")) is None
    with pytest.raises(FrontierConfigError):
        make_frontier_client(Settings(frontier_provider="anthropic", frontier_model=""))


# --- OpenAI over HTTP ----------------------------------------------------------


def test_openai_answer_is_parsed_normalised_and_costed(openai_server):
    script, url = openai_server
    script.then(openai_answers(INVOICE_ANSWER, prompt_tokens=2000, completion_tokens=300))
    answer = openai_client(url).extract(INVOICE, TEXT)

    assert answer.values["total"] == 4600.0 and answer.values["currency"] == "USD"
    assert (answer.input_tokens, answer.output_tokens) == (2000, 300)
    assert answer.cost_usd == pytest.approx((2000 * 2.5 + 300 * 10.0) / 1e6)
    assert answer.latency_ms > 0 and json.loads(answer.raw_json) == INVOICE_ANSWER
    sent = script.requests[0]
    assert sent["model"] == "gpt-4o-mini"
    assert sent["response_format"]["json_schema"]["schema"] == strict_schema(INVOICE.schema)
    assert sent["messages"][-1] == {"role": "user", "content": TEXT}


def test_openai_invalid_json_is_a_failure_that_still_costs(openai_server):
    script, url = openai_server
    script.then(openai_answers('{"vendor_name": "Azure Interior", "total": ', prompt_tokens=1000, completion_tokens=50))
    with pytest.raises(FrontierInvalidAnswer) as info:
        openai_client(url).extract(INVOICE, TEXT)
    assert info.value.code == "invalid_answer"
    assert (info.value.input_tokens, info.value.output_tokens) == (1000, 50)
    assert info.value.cost_usd == pytest.approx((1000 * 2.5 + 50 * 10.0) / 1e6)


def test_openai_schema_violating_json_is_a_failure(openai_server):
    script, url = openai_server
    script.then(openai_answers({**INVOICE_ANSWER, "line_items": "two desks", "surprise": 1}))
    with pytest.raises(FrontierSchemaViolation) as info:
        openai_client(url).extract(INVOICE, TEXT)
    assert info.value.code == "schema_violation"


def test_openai_refusal_and_truncation_are_failures(openai_server):
    script, url = openai_server
    client = openai_client(url)
    script.then(lambda body: json_response(openai_completion(None, refusal="I can't help with that.")))
    with pytest.raises(FrontierInvalidAnswer, match="refused"):
        client.extract(INVOICE, TEXT)
    script.steps[:] = [lambda body: json_response(openai_completion('{"vendor_name": "Az', finish_reason="length"))]
    with pytest.raises(FrontierInvalidAnswer, match="cut off"):
        client.extract(INVOICE, TEXT)


def test_openai_timeout(openai_server):
    script, url = openai_server
    script.then(hangs(1.5, openai_answers(INVOICE_ANSWER)))
    started = time.monotonic()
    with pytest.raises(FrontierTimeout) as info:
        openai_client(url, timeout_s=0.3).extract(INVOICE, TEXT)
    assert time.monotonic() - started < 1.4
    assert info.value.code == "timeout"


def test_openai_429_then_success_is_retried_by_the_sdk(openai_server):
    script, url = openai_server
    script.then(fails(429)).then(openai_answers(INVOICE_ANSWER))
    answer = openai_client(url, max_retries=2).extract(INVOICE, TEXT)
    assert answer.values["invoice_number"] == "INV/2023/00003"
    assert len(script.requests) == 2


def test_openai_429_without_retries_left_is_unavailable(openai_server):
    script, url = openai_server
    script.then(fails(429))
    with pytest.raises(FrontierUnavailable, match="429"):
        openai_client(url, max_retries=1).extract(INVOICE, TEXT)
    assert len(script.requests) == 2


def test_openai_500_storm_opens_the_breaker(openai_server):
    script, url = openai_server
    script.then(fails(500))
    breaker = pybreaker.CircuitBreaker(fail_max=3, reset_timeout=60, throw_new_error_on_trip=False)
    client = openai_client(url, max_retries=1, breaker=breaker)
    for _ in range(3):
        with pytest.raises(FrontierUnavailable, match="HTTP 500") as info:
            client.extract(INVOICE, TEXT)
        assert not isinstance(info.value, FrontierCircuitOpen)
    assert len(script.requests) == 6  # each call: one try and one SDK retry
    assert breaker.current_state == "open"
    with pytest.raises(FrontierCircuitOpen) as info:
        client.extract(INVOICE, TEXT)
    assert info.value.code == "circuit_open"
    assert len(script.requests) == 6  # an open circuit does not call


def test_bad_answers_count_towards_the_breaker_and_a_good_one_closes_it(openai_server):
    script, url = openai_server
    script.then(openai_answers("not json"))
    breaker = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=0.2, throw_new_error_on_trip=False)
    client = openai_client(url, breaker=breaker)
    for _ in range(2):
        with pytest.raises(FrontierInvalidAnswer):
            client.extract(INVOICE, TEXT)
    assert breaker.current_state == "open"
    time.sleep(0.3)
    script.steps[:] = [openai_answers(INVOICE_ANSWER)]
    assert client.extract(INVOICE, TEXT).values["total"] == 4600.0  # the half-open trial call
    assert breaker.current_state == "closed"


def test_a_wrong_key_is_rejected_and_never_shown(openai_server, caplog):
    script, url = openai_server
    script.then(openai_answers(INVOICE_ANSWER))
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-that-must-not-leak"
    client = openai_client(url)
    client.client = client.client.with_options(api_key=wrong)
    with pytest.raises(FrontierRejected, match="401") as info:
        client.extract(INVOICE, TEXT)
    assert wrong not in str(info.value) and wrong not in repr(info.value.to_problem())
    assert wrong not in caplog.text and KEY not in caplog.text


def test_keys_stay_out_of_logs_and_errors(openai_server, caplog):
    script, url = openai_server
    caplog.set_level(logging.DEBUG)
    settings = Settings(frontier_provider="openai", frontier_model="gpt-4o-mini", frontier_api_key=KEY,
                        frontier_base_url=url, frontier_max_retries=1, frontier_timeout_s=5)
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
    client = make_frontier_client(settings)
    script.then(fails(500)).then(openai_answers("{broken"))
    errors = []
    for _ in range(2):
        with pytest.raises(FrontierError) as info:
            client.extract(INVOICE, TEXT)
        errors.append(info.value)
    assert script.headers[0]["Authorization"] == f"Bearer {KEY}"  # the key was sent, to the server only
    for exc in errors:
        assert KEY not in str(exc) and KEY not in json.dumps(exc.to_problem())
    assert KEY not in caplog.text


# --- Anthropic over HTTP -------------------------------------------------------


def test_anthropic_forced_tool_answer(anthropic_server):
    script, url = anthropic_server
    script.then(anthropic_answers(INVOICE_ANSWER, input_tokens=1200, output_tokens=200))
    answer = anthropic_client(url).extract(INVOICE, TEXT)
    assert answer.values["currency"] == "USD" and answer.values["line_items"][0]["description"] == "Desk"
    assert answer.cost_usd == pytest.approx((1200 * 2.5 + 200 * 10.0) / 1e6)
    sent = script.requests[0]
    (tool,) = sent["tools"]
    assert sent["tool_choice"] == {"type": "tool", "name": tool["name"]}
    assert tool["input_schema"] == strict_schema(INVOICE.schema)
    assert sent["messages"] == [{"role": "user", "content": TEXT}]


def test_anthropic_schema_violation_and_wrong_tool(anthropic_server):
    script, url = anthropic_server
    client = anthropic_client(url)
    script.then(anthropic_answers({**INVOICE_ANSWER, "invoice_date": None}))
    with pytest.raises(FrontierSchemaViolation, match="invoice_date"):
        client.extract(INVOICE, TEXT)
    script.steps[:] = [lambda body: json_response(anthropic_message("other_tool", INVOICE_ANSWER))]
    with pytest.raises(FrontierInvalidAnswer, match="tool"):
        client.extract(INVOICE, TEXT)


def test_anthropic_overloaded_then_success(anthropic_server):
    script, url = anthropic_server
    script.then(fails(529, "anthropic")).then(anthropic_answers(INVOICE_ANSWER))
    answer = anthropic_client(url, max_retries=2).extract(INVOICE, TEXT)
    assert answer.values["total"] == 4600.0 and len(script.requests) == 2


def test_anthropic_timeout(anthropic_server):
    script, url = anthropic_server
    script.then(hangs(1.5, anthropic_answers(INVOICE_ANSWER)))
    with pytest.raises(FrontierTimeout):
        anthropic_client(url, timeout_s=0.3).extract(INVOICE, TEXT)


def test_unreachable_server_is_unavailable():
    client = anthropic_client("http://127.0.0.1:9", timeout_s=1.0)
    with pytest.raises(FrontierUnavailable):
        client.extract(INVOICE, TEXT)
