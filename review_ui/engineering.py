"""Engineers' pages: model versions, training runs and stats, drawn as inline SVG charts.

Reachable by the engineer and admin roles only (the parent blueprint has
already required a login and checks CSRF). Promotion and rollback go through
:mod:`service.registry`, each behind a confirmation page; a training run is
requested through :mod:`service.training_runs`, the same path as the API's
``POST /v1/training-runs`` and ``docket train``, and its page follows it live.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from pydantic import ValidationError
from redis.exceptions import RedisError
from sqlalchemy import select

from review_ui import charts
from service import registry
from service.api.schemas import TrainingRunRequest
from service.db import get_session
from service.exceptions import RegistryConflict, TrainingRunActive
from service.models import PROCESSING, QUEUED, ModelVersion, TrainingRun, utcnow
from service.stats import compute_stats
from service.training_runs import current_run, get_run, request_run

bp = Blueprint("engineering", __name__, url_prefix="/engineering")

STATS_DAYS = (7, 14, 30, 90)


@bp.before_request
def engineers_only() -> None:
    if not current_user.is_authenticated or not current_user.is_engineer:
        abort(403)


def version_reports(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The evaluation report(s) in a version's metrics: one, or one per document type."""
    if "fields" in metrics:
        return {metrics.get("doc_type", "all"): metrics}
    return {k: v for k, v in metrics.items() if isinstance(v, dict) and "fields" in v}


def calibration_points(report: dict[str, Any]) -> list[tuple[float, float]]:
    curve = report.get("calibration") or report.get("calibration_curve") or []
    if isinstance(curve, dict) and "x" in curve and "y" in curve:
        return list(zip(curve["x"], curve["y"]))
    return [(float(p[0]), float(p[1])) for p in curve if isinstance(p, (list, tuple)) and len(p) >= 2]


@bp.get("/models")
def models() -> str:
    versions = get_session().scalars(select(ModelVersion).order_by(ModelVersion.created_at.desc())).all()
    panels = []
    for version in versions:
        for doc_type, report in version_reports(version.metrics or {}).items():
            fields = report.get("fields", {})
            panels.append({
                "version": version.version,
                "doc_type": doc_type,
                "straight_through": report.get("straight_through"),
                "target_precision": report.get("target_precision"),
                "accuracy": charts.unit_bars(f"{version.version} · {doc_type}: accuracy per field",
                                             [(name, f.get("accuracy")) for name, f in fields.items()]),
                "calibration": charts.calibration(f"{version.version} · {doc_type}: calibration",
                                                  calibration_points(report)),
            })
    return render_template("engineering/models.html", versions=versions, panels=panels)


def actor() -> str:
    return f"user:{current_user.email}"


@bp.get("/models/<path:version>/promote")
def confirm_promote(version: str) -> str:
    db = get_session()
    return render_template("engineering/confirm.html", action="promote", entry=registry.get_version(db, version),
                           active=registry.active_version(db))


@bp.post("/models/<path:version>/promote")
def promote(version: str) -> Response:
    try:
        registry.promote(get_session(), version, actor(), reason="manual, from the review UI")
        flash(f"{version} is now the served model; workers switch to it within seconds.", "ok")
    except RegistryConflict as exc:
        get_session().rollback()
        flash(exc.detail, "error")
    return redirect(url_for("review_ui.engineering.models"), 303)


@bp.get("/models/rollback")
def confirm_rollback() -> str:
    db = get_session()
    active = registry.active_version(db)
    if active is None:
        abort(404)
    return render_template("engineering/confirm.html", action="rollback", entry=active, active=active)


@bp.post("/models/rollback")
def rollback() -> Response:
    db = get_session()
    active = registry.active_version(db)
    if active is None or active.version != request.form.get("active"):
        flash("The active model changed since you looked; nothing was rolled back. Check the table again.", "error")
        return redirect(url_for("review_ui.engineering.models"), 303)
    try:
        target = registry.rollback(db, actor())
        flash(f"Rolled back from {active.version} to {target.version}.", "ok")
    except RegistryConflict as exc:
        db.rollback()
        flash(exc.detail, "error")
    return redirect(url_for("review_ui.engineering.models"), 303)


RUN_OPTIONS = ("steps", "replay", "seed")  # what the start form offers; the rest keep their defaults
LOG_TAIL = 4000  # characters of a run's log shown live; the whole log is one click away


def loss_chart(run: TrainingRun, width: int = 320, height: int = 120) -> charts.Chart | None:
    losses = (run.metrics or {}).get("loss")
    if not isinstance(losses, list) or not losses:
        return None
    return charts.line_chart(f"run {run.id}: loss", [str(i + 1) for i in range(len(losses))],
                             [float(v) for v in losses], width=width, height=height, fmt=".3f")


def is_live(run: TrainingRun) -> bool:
    return run.status in (QUEUED, PROCESSING)


@bp.get("/runs")
def runs() -> str:
    all_runs = get_session().scalars(select(TrainingRun).order_by(TrainingRun.created_at.desc()).limit(100)).all()
    live = any(is_live(run) for run in all_runs)
    loss = {run.id: chart for run in all_runs if (chart := loss_chart(run))}
    return render_template("engineering/runs.html", runs=all_runs, live=live, loss=loss,
                           holder=current_run(get_session()), options=RUN_OPTIONS)


def form_integer(text: str) -> int | str:
    """A form field as the integer it spells; anything else as is, for the request model to name the error."""
    try:
        return int(text)
    except ValueError:
        return text


def run_params(form) -> dict[str, Any]:
    """The start form's options, checked by the API's own request model (blank means the default)."""
    values = {name: form.get(name, "").strip() for name in RUN_OPTIONS}
    return TrainingRunRequest.model_validate({k: form_integer(v) for k, v in values.items() if v}).model_dump(
        exclude_none=True)


def describe_invalid(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


@bp.post("/runs")
def start_run() -> Response:
    """Queue a retraining run, as ``POST /v1/training-runs`` does, and open its page."""
    try:
        params = run_params(request.form)
    except ValidationError as exc:
        flash(f"Nothing was started: {describe_invalid(exc)}.", "error")
        return redirect(url_for("review_ui.engineering.runs"), 303)
    db = get_session()
    try:
        run = request_run(db, current_app.extensions["docket.redis"], current_app.extensions["docket.settings"],
                          actor(), params)
    except TrainingRunActive as exc:
        flash(f"{exc.detail} Wait for it to finish.", "error")
        run_id = exc.extra.get("run_id")
        return redirect(url_for("review_ui.engineering.run", run_id=run_id) if run_id
                        else url_for("review_ui.engineering.runs"), 303)
    except RedisError:
        flash("The job queue is unreachable, so the run could not be queued; it is recorded as failed. "
              "Try again once Redis is back.", "error")
        return redirect(url_for("review_ui.engineering.runs"), 303)
    flash(f"Training run {run.id} is queued; a training worker (docket worker -q training) picks it up.", "ok")
    return redirect(url_for("review_ui.engineering.run", run_id=run.id), 303)


def run_view(run: TrainingRun) -> dict[str, Any]:
    progress = run.progress or {}
    step, total = progress.get("step"), progress.get("total")
    log_text = run.log or ""
    return {
        "run": run,
        "live": is_live(run),
        "stage": progress.get("stage") or run.status,
        "step": step,
        "total": total,
        "loss": progress.get("loss"),
        "eta_s": progress.get("eta_s"),
        "fraction": step / total if isinstance(step, int) and isinstance(total, int) and total else None,
        "chart": loss_chart(run, width=640, height=180),
        "log_tail": log_text[-LOG_TAIL:],
        "log_cut": len(log_text) > LOG_TAIL,
        "gate": (run.metrics or {}).get("gate"),
    }


@bp.get("/runs/<int:run_id>")
def run(run_id: int) -> str:
    return render_template("engineering/run.html", **run_view(get_run(get_session(), run_id)))


@bp.get("/runs/<int:run_id>/live")
def run_live(run_id: int) -> str:
    """The live part of a run's page, which htmx polls while the run is queued or running."""
    return render_template("engineering/_run_live.html", **run_view(get_run(get_session(), run_id)))


@bp.get("/runs/<int:run_id>/log")
def run_log(run_id: int) -> Response:
    """The whole log as plain text (a download, never rendered as HTML)."""
    text = get_run(get_session(), run_id).log or ""
    return Response(text, mimetype="text/plain", headers={"X-Content-Type-Options": "nosniff"})


def fold_days(groups: list[dict[str, Any]], dates: list[date]) -> dict[str, list[float]]:
    """Sum :func:`service.stats.compute_stats` groups (one per day and type) into one value per day."""
    keys = ("documents", "straight_through", "review", "escalated", "frontier_spend_usd", "frontier_only_cost_usd")
    by_day: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(keys, 0.0))
    for group in groups:
        for key in keys:
            by_day[group["period"]][key] += group.get(key) or 0.0
    return {key: [by_day[d.isoformat()][key] for d in dates] for key in keys}


@bp.get("/stats")
def stats() -> str:
    days = request.args.get("days", type=int)
    days = days if days in STATS_DAYS else 14
    doc_type = request.args.get("doc_type") or None
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    dates = [(today - timedelta(days=days - 1 - i)).date() for i in range(days)]
    report = compute_stats(get_session(), current_app.extensions["docket.settings"], "day",
                           since=today - timedelta(days=days - 1), doc_type=doc_type)
    per_day = fold_days(report["groups"], dates)
    labels = [d.strftime("%d %b") for d in dates]
    docs = per_day["documents"]
    series = {"straight_through": per_day["straight_through"], "review": per_day["review"]}

    def rate(part: list[float], scale: float = 1.0) -> list[float | None]:
        return [p / n * scale if n else None for p, n in zip(part, docs)]

    figures = [
        charts.stacked_bars("Documents per day by route", labels, series),
        charts.line_chart("Straight-through rate", labels, rate(per_day["straight_through"]), fmt=".0%"),
        charts.line_chart("Escalation rate", labels, rate(per_day["escalated"]), fmt=".0%", cls="s-escalated"),
        charts.line_chart("Review rate", labels, rate(per_day["review"]), fmt=".0%", cls="s-review"),
        charts.line_chart("Frontier spend per day (USD)", labels, per_day["frontier_spend_usd"], cls="s-spend"),
        charts.line_chart("Cost per 1,000 documents (USD)", labels, rate(per_day["frontier_spend_usd"], 1000),
                          cls="s-spend"),
    ]
    return render_template("engineering/stats.html", figures=figures, totals=report["totals"], days=days,
                           choices=STATS_DAYS, budget=report.get("budget"), doc_type=doc_type or "",
                           doc_types=sorted(current_app.extensions["docket.doc_types"]))
