"""The OpenAPI document as served: spectree's, plus the media types spectree cannot express.

spectree documents every response body as ``application/json``. The API's
errors are RFC 9457 problems (``application/problem+json``), and a few
operations answer other media types (the stored file, a JSON Schema, the
Prometheus text). :class:`DocketSpec` finishes the generated document so it
says what the API really sends; the fuzz tests (tests/test_api_fuzz.py) hold
every answer to it.
"""

from __future__ import annotations

from typing import Any

from spectree import SpecTree

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"


class DocketSpec(SpecTree):
    """A SpecTree whose generated document names the real media types of every answer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (method, OpenAPI path, status) -> {media type: schema}
        self.bodies: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.optional_bodies: set[tuple[str, str]] = set()

    def add_body(self, method: str, path: str, status: int, media: dict[str, dict], description: str) -> None:
        """Document a response of *status* whose body is one of *media*, not JSON from a model."""
        self.bodies[(method.lower(), path, str(status))] = {"description": description, "media": media}

    def optional_body(self, method: str, path: str) -> None:
        """Document the request body of an operation as optional (spectree marks every body required)."""
        self.optional_bodies.add((method.lower(), path))

    def _generate_spec(self) -> dict[str, Any]:
        doc = super()._generate_spec()
        for path, operations in doc.get("paths", {}).items():
            for method, operation in operations.items():
                if (method, path) in self.optional_bodies and "requestBody" in operation:
                    operation["requestBody"]["required"] = False
                responses = operation.setdefault("responses", {})
                for status, response in responses.items():
                    schema = response.get("content", {}).pop("application/json", {}).get("schema")
                    if schema is None:
                        continue
                    media = PROBLEM_JSON if schema.get("$ref") == PROBLEM_REF else "application/json"
                    response["content"][media] = {"schema": schema}
                for (b_method, b_path, status), body in self.bodies.items():
                    if (b_method, b_path) == (method, path):
                        responses[status] = {
                            "description": body["description"],
                            "content": {name: {"schema": schema} for name, schema in body["media"].items()},
                        }
        return doc
