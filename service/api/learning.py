"""The v1 endpoints of the learning loop: training runs and the model registry.

Scopes: ``train`` requests and reads training runs and lists model versions;
promoting and rolling back change what every client is served, so they need
``admin`` (which includes every scope).
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from service import registry
from service.api.schemas import (
    ModelList,
    ModelVersionOut,
    TrainingRunOut,
    TrainingRunRequest,
)
from service.api.views import _resp, bp, parse, redis, require, settings, spec
from service.auth import ApiKey
from service.db import get_session
from service.exceptions import InvalidRequest
from service.models import ModelVersion
from service.training_runs import get_run, request_run, run_json


def actor_of(key: ApiKey) -> str:
    return f"client:{key.client.name}"


def version_json(entry: ModelVersion) -> dict[str, Any]:
    data = {name: getattr(entry, name) for name in ModelVersionOut.model_fields}
    return ModelVersionOut.model_validate(data).model_dump(mode="json")


def run_response(run, status: int = 200) -> Response:
    resp = current_app.json.response(TrainingRunOut.model_validate(run_json(run)).model_dump(mode="json"))
    resp.status_code = status
    resp.headers["Location"] = f"/v1/training-runs/{run.id}"
    return resp


@bp.post("/v1/training-runs")
@spec.validate(json=TrainingRunRequest, resp=_resp(HTTP_202=TrainingRunOut), tags=["training"], skip_validation=True)
def create_training_run() -> Response:
    """Retrain from approved reviews (train scope): one rq job on the training queue.

    Answers 202 with the queued run; 409 while another run is queued or
    running. The new version is promoted only if it passes the gate.
    """
    key = require("train")
    # No body means every default; a body must be a JSON object (null, [] or broken JSON are refused).
    payload = request.get_json(silent=True) if request.get_data(cache=True) else {}
    if payload is None:
        raise InvalidRequest("The body is not a JSON object; send {} or leave it empty for the defaults.")
    options = parse(TrainingRunRequest, payload)
    params = options.model_dump(exclude_none=True)
    run = request_run(get_session(), redis(), settings(), actor_of(key), params)
    return run_response(run, 202)


spec.optional_body("post", "/v1/training-runs")  # no body: every option at its default


@bp.get("/v1/training-runs/<int:run_id>")
@spec.validate(resp=_resp(HTTP_200=TrainingRunOut), tags=["training"], skip_validation=True)
def get_training_run(run_id: int) -> Response:
    """A training run: status, progress (step, loss, ETA), log, metrics and the gate's comparison (train scope)."""
    require("train")
    return run_response(get_run(get_session(), run_id))


@bp.get("/v1/models")
@spec.validate(resp=_resp(HTTP_200=ModelList), tags=["models"], skip_validation=True)
def list_models() -> Response:
    """Every registered model version, newest first, and the active one (train scope)."""
    require("train")
    session = get_session()
    active = registry.active_version(session)
    items = [version_json(v) for v in registry.list_versions(session)]
    return current_app.json.response({"active": active.version if active else None, "items": items})


@bp.post("/v1/models/<path:version>/promote")
@spec.validate(resp=_resp(HTTP_200=ModelVersionOut), tags=["models"], skip_validation=True)
def promote_model(version: str) -> Response:
    """Serve VERSION from now on, bypassing the gate (admin scope). Workers switch within seconds."""
    key = require("admin")
    entry = registry.promote(get_session(), version, actor_of(key), reason="manual promotion through the API")
    return current_app.json.response(version_json(entry))


@bp.post("/v1/models/rollback")
@spec.validate(resp=_resp(HTTP_200=ModelVersionOut), tags=["models"], skip_validation=True)
def rollback_model() -> Response:
    """Go back to the version the active one replaced (admin scope); answers the version now active."""
    key = require("admin")
    entry = registry.rollback(get_session(), actor_of(key))
    return current_app.json.response(version_json(entry))
