"""The REST API, v1: blueprint ``bp`` and the OpenAPI spec built from its models."""

from service.api import learning  # noqa: F401 - its routes join bp
from service.api import webhooks  # noqa: F401 - its routes join bp
from service.api.problems import register_error_handlers
from service.api.views import bp, spec

__all__ = ["bp", "register_error_handlers", "spec"]
