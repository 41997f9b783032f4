"""``docket users``: people who log in to the review UI."""

from __future__ import annotations

import click
from sqlalchemy import select

from config.settings import get_settings
from service import db
from service.exceptions import DocketError
from service.models import ROLES, User
from service.users import create_user


@click.group("users")
def users_group() -> None:
    """Review UI accounts (reviewer, engineer, admin)."""


@users_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="reviewer", show_default=True)
@click.option("--name", default="", help="Display name.")
@click.password_option(help="Prompted (twice, hidden) when not given.")
def users_create(email: str, role: str, name: str, password: str) -> None:
    """Create a user; the password is stored as an argon2id hash."""
    database = db.Database(get_settings().database_uri)
    try:
        with database.session() as session:
            user = create_user(session, email, password, role=role, name=name)
            click.echo(f"user {user.email} ({user.role}) created")
    except DocketError as exc:
        raise click.UsageError(exc.detail) from None
    finally:
        database.dispose()


@users_group.command("list")
def users_list() -> None:
    """Every user with role and state."""
    database = db.Database(get_settings().database_uri)
    try:
        with database.session() as session:
            for user in session.scalars(select(User).order_by(User.email)):
                click.echo(f"{user.email}\t{user.role}\t{'active' if user.active else 'inactive'}")
    finally:
        database.dispose()


COMMANDS = [users_group]
