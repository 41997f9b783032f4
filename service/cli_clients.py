"""``docket clients``: API clients' webhooks (set, rotate the secret, remove) and their delivery attempts."""

from __future__ import annotations

import click

from config.settings import get_settings
from service import db
from service.exceptions import DocketError
from service.webhooks import registration

ACTOR = "cli"


@click.group("clients")
def clients_group() -> None:
    """API clients: the systems that hold keys and submit documents."""


@clients_group.command("webhook")
@click.argument("name")
@click.option("--url", help="Send this client's events here (http or https).")
@click.option("--rotate-secret", is_flag=True, help="Make a new signing secret; the old one stops signing at once.")
@click.option("--remove", is_flag=True, help="Stop sending this client events.")
def clients_webhook(name: str, url: str | None, rotate_secret: bool, remove: bool) -> None:
    """Show, set or remove client NAME's webhook. A new signing secret is printed once, here."""
    if remove and (url or rotate_secret):
        raise click.UsageError("--remove goes alone.")
    database = db.Database(get_settings().database_uri)
    try:
        with database.session() as session:
            client = registration.find_client(session, name)
            if remove:
                registration.remove_webhook(session, client, ACTOR)
                click.echo(f"client {name}: webhook removed")
                return
            secret = None
            if url:
                secret = registration.set_webhook(session, client, url, ACTOR, rotate_secret=rotate_secret)
            elif rotate_secret:
                secret = registration.rotate_secret(session, client, ACTOR)
            if not client.webhook_url:
                click.echo(f"client {name}: no webhook (set one with --url)")
                return
            click.echo(f"client {name}: {client.webhook_url}")
            click.echo(f"events: {', '.join(registration.events_for(session, client))}")
            if secret:
                click.echo(secret)
                click.echo("the signing secret above is shown this once: store it with the receiver", err=True)
    except DocketError as exc:
        raise click.UsageError(exc.detail) from None
    finally:
        database.dispose()


@clients_group.command("deliveries")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
def clients_deliveries(name: str, limit: int) -> None:
    """Client NAME's latest webhook delivery attempts, newest first."""
    database = db.Database(get_settings().database_uri)
    try:
        with database.session() as session:
            client = registration.find_client(session, name)
            for row in registration.recent_deliveries(session, client, limit):
                result = row.status_code if row.status_code is not None else row.error
                click.echo(f"{row.created_at:%Y-%m-%d %H:%M:%S}\t{row.event}\t{row.delivery_id}\t#{row.attempt}\t"
                           f"{row.outcome}\t{result}\t{row.duration_ms:.0f} ms")
    except DocketError as exc:
        raise click.UsageError(exc.detail) from None
    finally:
        database.dispose()


COMMANDS = [clients_group]
