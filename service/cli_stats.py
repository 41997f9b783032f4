"""``docket stats``: routing rates and the frontier bill, per document type and period."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from config.settings import get_settings
from service.db import Database
from service.stats import PERIODS, compute_stats, format_stats


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


@click.command("stats")
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True)
@click.option("--since", type=click.DateTime(), help="First day (UTC) to count; default 30 days by day, a year by month.")
@click.option("--until", type=click.DateTime(), help="Day (UTC) to stop before.")
@click.option("--type", "doc_type", help="Only this document type.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def stats(period: str, since: datetime | None, until: datetime | None, doc_type: str | None, as_json: bool) -> None:
    """Straight-through, escalation and review rates, frontier spend and cost per 1,000 documents."""
    settings = get_settings()
    database = Database(settings.database_uri)
    try:
        with database.session() as session:
            report = compute_stats(session, settings, period, _utc(since), _utc(until), doc_type)
    finally:
        database.dispose()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(format_stats(report))
    budget = report["budget"]
    click.echo(
        f"\nfrontier budget {budget['month']}: ${budget['spent_usd']:.4f} of ${budget['budget_usd']:.2f}"
        + (" (exhausted: uncertain documents go to review without a second opinion)" if budget["exhausted"] else "")
    )


COMMANDS = [stats]
