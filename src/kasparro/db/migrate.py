"""Run Alembic migrations from code: the same path in tests, `make run` and production."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
INSUFFICIENT_PRIVILEGE = "42501"


class MigrationNotPermitted(RuntimeError):
    """The role in DATABASE_URL may not change the schema (the application role)."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a '%' in a URL-encoded password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(database_url), revision)
        if revision == "head":
            _partitions_ahead(database_url)
    except sa.exc.ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        raise MigrationNotPermitted(
            "migrations are pending and the database role in DATABASE_URL may not change the "
            "schema (permission denied). Run them as the schema's owner (compose: the migrate "
            "service; Kubernetes: the migrate Job; or `kasparro db upgrade` with the owner's "
            "DATABASE_URL), and set MIGRATE_ON_START=false for this process."
        ) from None


def _partitions_ahead(database_url: str) -> None:
    """Price history's months ahead (PostgreSQL), created at every start that migrates (a role
    that may not is warned, not stopped: see keep_partitions_ahead)."""
    from kasparro.db.engine import create_db_engine
    from kasparro.db.partitions import keep_partitions_ahead

    engine = create_db_engine(database_url)
    try:
        keep_partitions_ahead(engine)
    finally:
        engine.dispose()


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
