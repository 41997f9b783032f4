"""Alembic migrations: up and down on SQLite and PostgreSQL, and no drift from the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service import db
from service.models import Base


def drift(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url):
    """database_url is migrated to head by its fixture: autogenerate must find nothing to do."""
    assert drift(database_url) == []


def test_down_to_base_and_up_again(database_url):
    model_tables = set(Base.metadata.tables)
    assert model_tables <= tables(database_url)
    db.downgrade(database_url, "base")
    assert tables(database_url) & model_tables == set()
    db.upgrade(database_url)
    assert model_tables <= tables(database_url)
    assert drift(database_url) == []


def test_one_step_down_and_up(sqlite_url):
    db.downgrade(sqlite_url, "-1")
    db.upgrade(sqlite_url, "head")
    assert drift(sqlite_url) == []


@pytest.mark.parametrize("table", ["documents", "extraction_attempts", "reviews", "audit_events", "model_versions",
                                   "training_runs", "api_clients", "api_keys", "users", "webhook_deliveries"])
def test_every_table_the_issue_names_exists(sqlite_url, table):
    assert table in tables(sqlite_url)
