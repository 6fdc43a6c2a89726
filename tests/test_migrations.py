"""Migrations produce exactly the schema the code uses, on both databases, and reverse cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from kasparro.db import partitions, schema
from kasparro.db.migrate import downgrade, upgrade
from kasparro.db.schema import metadata


def schema_diff(engine: Engine) -> list[object]:
    """What the database has that db/schema.py does not say, or the reverse. On PostgreSQL
    price_history is partitioned: its partitions (and their own indexes) and its BRIN index are
    partitioning's, not the schema's; the parent must match the schema like any table."""

    def include_name(name: str | None, type_: str, _parent: object) -> bool:
        return not partitions.is_partition_object(name)

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        return list(compare_metadata(context, metadata))


def test_migrations_match_schema(engine: Engine) -> None:
    assert schema_diff(engine) == []
    if engine.dialect.name == "postgresql":
        assert partitions.is_partitioned(engine)


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
    assert schema_diff(engine) == []


def test_0003_moves_impossible_dates_out_of_history(database_url: str, engine: Engine) -> None:
    downgrade(database_url, "0002")
    good, future = datetime(2026, 1, 2, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)
    row = {"source": "csv", "source_asset_id": "aaa-alpha", "asset_id": "aaa", "run_id": "r"}
    values = {"market_cap_usd": None, "volume_24h_usd": None, "ingested_at": good}
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.assets).values(
                asset_id="aaa", symbol="AAA", name="Alpha", created_at=good, created_run_id="r"
            )
        )
        for raw_id, when, price in (("a" * 64, good, 1.5), ("b" * 64, future, 999.0)):
            conn.execute(
                sa.insert(schema.raw_payloads).values(
                    raw_id=raw_id, source="csv", payload={"p": price}, run_id="r", fetched_at=good
                )
            )
            conn.execute(
                sa.insert(schema.price_history).values(
                    **row, **values, observed_at=when, price_usd=price, raw_id=raw_id
                )
            )
        conn.execute(
            sa.insert(schema.asset_sources).values(
                **row,
                **values,
                symbol="AAA",
                name="Alpha",
                price_usd=999.0,
                observed_at=future,
                raw_id="b" * 64,
                match_method="new",
                match_score=1.0,
            )
        )
    upgrade(database_url)
    with engine.connect() as conn:
        latest = conn.execute(sa.select(schema.asset_sources)).one()
        history = conn.execute(sa.select(schema.price_history.c.price_usd)).scalars().all()
        moved = conn.execute(sa.select(schema.quarantine)).one()
    assert (latest.price_usd, latest.observed_at) == (1.5, good)
    assert history == [1.5]
    assert (moved.reason_code, moved.raw_id, moved.payload) == (
        "future_timestamp",
        "b" * 64,
        {"p": 999.0},
    )
