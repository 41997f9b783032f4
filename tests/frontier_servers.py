"""Loopback HTTP servers that speak the OpenAI chat-completions and Anthropic messages wire formats.

The real SDKs talk to them over HTTP on 127.0.0.1. Each server checks what a
real provider would check (the key, the model, the structured-output request)
and answers what the test scripts: a JSON payload, broken text, an HTTP error
or silence. Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from service.frontier import AnthropicClient, OpenAIClient, Price, schema_name, strict_schema

KEY = "sk-test-0123456789abcdef-SECRET"
PRICE = Price(input_per_mtok=2.5, output_per_mtok=10.0)
OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


def openai_completion(content: str | None, prompt_tokens: int = 900, completion_tokens: int = 120,
                      finish_reason: str = "stop", refusal: str | None = None, model: str = "gpt-4o-mini") -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "logprobs": None,
            "finish_reason": finish_reason,
        }],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def anthropic_message(tool: str, tool_input: Any, input_tokens: int = 1000, output_tokens: int = 150,
                      stop_reason: str = "tool_use", model: str = "claude-haiku-4-5") -> dict:
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "tool_use", "id": "toolu_test", "name": tool, "input": tool_input}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def openai_error(status: int, message: str = "server error") -> Response:
    body = {"error": {"message": message, "type": "server_error" if status >= 500 else "invalid_request_error"}}
    return Response(json.dumps(body), status=status, content_type="application/json",
                    headers={"retry-after-ms": "5"})


def anthropic_error(status: int, kind: str = "api_error") -> Response:
    body = {"type": "error", "error": {"type": kind, "message": "scripted failure"}}
    return Response(json.dumps(body), status=status, content_type="application/json",
                    headers={"retry-after-ms": "5"})


@dataclass
class Script:
    """What the server answers, one step per request; the last step repeats."""

    steps: list[Callable[[dict], Response]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)

    def then(self, step: Callable[[dict], Response]) -> "Script":
        self.steps.append(step)
        return self

    def handle(self, request: Request) -> Response:
        body = json.loads(request.get_data(as_text=True))
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        step = self.steps[min(len(self.requests) - 1, len(self.steps) - 1)]
        return step(body)


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj), status=status, content_type="application/json")


# --- scripted answers ----------------------------------------------------------


def openai_answers(payload: Any, **usage: Any) -> Callable[[dict], Response]:
    """Answer with *payload* as the message content (a str is sent as is, anything else as JSON)."""
    content = payload if isinstance(payload, str) else json.dumps(payload)
    return lambda body: json_response(openai_completion(content, **usage))


def anthropic_answers(payload: Any, **usage: Any) -> Callable[[dict], Response]:
    """Answer with a call of the forced tool with *payload* as its input."""
    return lambda body: json_response(anthropic_message(body["tool_choice"]["name"], payload, **usage))


def fails(status: int, provider: str = "openai") -> Callable[[dict], Response]:
    return lambda body: openai_error(status) if provider == "openai" else anthropic_error(status)


def hangs(seconds: float, then: Callable[[dict], Response]) -> Callable[[dict], Response]:
    def step(body: dict) -> Response:
        time.sleep(seconds)
        return then(body)

    return step


# --- servers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def loopback() -> Iterator[HTTPServer]:
    """A threaded loopback server (a hanging answer must not block the next request)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def openai_server(loopback: HTTPServer) -> Iterator[tuple[Script, str]]:
    """A scripted OpenAI-compatible server; checks the key and the structured-output request."""
    loopback.clear()
    script = Script()

    def handler(request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return openai_error(401, "Incorrect API key provided")
        body = json.loads(request.get_data(as_text=True))
        fmt = body.get("response_format", {})
        if fmt.get("type") != "json_schema" or fmt.get("json_schema", {}).get("strict") is not True:
            return openai_error(400, "response_format must be a strict json_schema")
        return script.handle(request)

    loopback.expect_request(OPENAI_PATH, method="POST").respond_with_handler(handler)
    yield script, loopback.url_for("/v1")
    loopback.clear()


@pytest.fixture
def anthropic_server(loopback: HTTPServer) -> Iterator[tuple[Script, str]]:
    """A scripted Anthropic messages server; checks the key, the version header and the forced tool."""
    loopback.clear()
    script = Script()

    def handler(request: Request) -> Response:
        # Older SDKs send x-api-key, newer ones a bearer token: the API takes either.
        if KEY not in (request.headers.get("x-api-key"), request.headers.get("Authorization", "")[len("Bearer "):]):
            return anthropic_error(401, "authentication_error")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(400, "invalid_request_error")
        body = json.loads(request.get_data(as_text=True))
        tools = {t["name"]: t for t in body.get("tools", [])}
        choice = body.get("tool_choice", {})
        if choice.get("type") != "tool" or choice.get("name") not in tools:
            return anthropic_error(400, "invalid_request_error")
        return script.handle(request)

    # The SDK posts to {base_url}/v1/messages.
    loopback.expect_request(ANTHROPIC_PATH, method="POST").respond_with_handler(handler)
    yield script, loopback.url_for("")
    loopback.clear()


def openai_client(base_url: str, **kwargs: Any) -> OpenAIClient:
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("max_retries", 0)
    return OpenAIClient("gpt-4o-mini", PRICE, api_key=KEY, base_url=base_url, **kwargs)


def anthropic_client(base_url: str, **kwargs: Any) -> AnthropicClient:
    kwargs.setdefault("timeout_s", 5.0)
    kwargs.setdefault("max_retries", 0)
    return AnthropicClient("claude-haiku-4-5", PRICE, api_key=KEY, base_url=base_url, **kwargs)


__all__ = [
    "KEY",
    "PRICE",
    "Script",
    "anthropic_answers",
    "anthropic_client",
    "anthropic_server",
    "fails",
    "hangs",
    "loopback",
    "openai_answers",
    "openai_client",
    "openai_server",
    "schema_name",
    "strict_schema",
]
