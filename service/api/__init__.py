"""The REST API, v1: blueprint ``bp`` and the OpenAPI spec built from its models."""

from service.api.problems import register_error_handlers
from service.api.views import bp, spec

__all__ = ["bp", "register_error_handlers", "spec"]
