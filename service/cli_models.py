"""`docket models`: the model registry from the command line (list, promote, roll back)."""

from __future__ import annotations

import json

import click

from config.settings import get_settings
from service import registry
from service.db import Database
from service.exceptions import DocketError
from service.webhooks import events as webhook_events


def _database() -> Database:
    """The database, with promotions' webhook events queued on the configured Redis."""
    settings = get_settings()
    return webhook_events.attach(Database(settings.database_uri), settings, webhook_events.worker_connection(settings))


def _overall(metrics: dict) -> str:
    overall = (metrics.get("overall") or {}).get("accuracy")
    return "—" if overall is None else f"{overall:.1%}"


@click.group("models")
def models() -> None:
    """Model versions: which exist, which is served, promote and roll back."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="print every field as JSON")
def list_models(as_json: bool) -> None:
    """Every registered version, newest first; the active one is marked with *."""
    database = _database()
    try:
        with database.session() as session:
            versions = registry.list_versions(session)
            if as_json:
                click.echo(json.dumps([{c.name: getattr(v, c.name) for c in v.__table__.columns} for v in versions],
                                      indent=2, default=str))
                return
            if not versions:
                click.echo("no versions registered: the default model is served")
                return
            click.echo(f"  {'version':<28} {'status':<10} {'golden acc':>10} {'parent':<28} created")
            for v in versions:
                mark = "*" if v.active else " "
                click.echo(f"{mark} {v.version:<28} {v.status:<10} {_overall(v.metrics or {}):>10} "
                           f"{v.parent or '—':<28} {v.created_at:%Y-%m-%d %H:%M}")
                for reason in (v.gate or {}).get("reasons", []) if v.status == "rejected" else []:
                    click.echo(f"    rejected: {reason}")
    finally:
        database.dispose()


@models.command("promote")
@click.argument("version")
def promote(version: str) -> None:
    """Serve VERSION from now on (bypasses the gate). Workers and the API switch within seconds."""
    database = _database()
    try:
        with database.session() as session:
            entry = registry.promote(session, version, "cli", reason="manual promotion from the CLI")
            click.echo(f"{entry.version} is active (was {entry.previous or 'the default model'})")
    except DocketError as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        database.dispose()


@models.command("rollback")
def rollback() -> None:
    """Retire the active version and serve the one it replaced."""
    database = _database()
    try:
        with database.session() as session:
            entry = registry.rollback(session, "cli")
            click.echo(f"{entry.version} is active again")
    except DocketError as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        database.dispose()


COMMANDS = [models]
