"""Migrations produce exactly the schema the code uses, on both databases, and reverse cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_replicas_migrating_at_once_do_not_race(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    downgrade(database_url, "base")
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "json"}
    command = [sys.executable, "-m", "kasparro.cli", "db", "upgrade"]
    processes = [
        subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE) for _ in range(4)
    ]
    failures = [p.stderr.read().decode() for p in processes if p.wait(timeout=120) != 0]  # type: ignore[union-attr]
    assert failures == []
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
