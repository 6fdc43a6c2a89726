"""Alembic environment: migrations run through `kasparro.db.engine`, like the application."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from kasparro.config import get_settings
from kasparro.db.engine import create_db_engine
from kasparro.db.schema import metadata

# Processes starting together would race to migrate: one migrates at a time (the others wait,
# then find nothing to do). PostgreSQL: a transaction-scoped advisory lock; SQLite: the
# migration's transaction begins IMMEDIATE, which takes the database's write lock.
MIGRATION_LOCK_KEY = 0x4B41534D  # "KASM"

url = context.config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_db_engine(url)
    with engine.connect() as connection:
        connection.execution_options(kasparro_write=True)
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
