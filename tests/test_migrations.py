"""Migrations produce exactly the schema the code uses, on both databases, and reverse cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from kasparro.db.migrate import downgrade, upgrade
from kasparro.db.schema import metadata


def test_migrations_match_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_reversible(database_url: str, engine: Engine) -> None:
    upgrade(database_url)  # already at head: a no-op
    downgrade(database_url, "base")
    with engine.connect() as conn:
        assert set(engine.dialect.get_table_names(conn)) <= {"alembic_version"}
    upgrade(database_url)
    with engine.connect() as conn:
        assert {t.name for t in metadata.sorted_tables} <= set(engine.dialect.get_table_names(conn))
