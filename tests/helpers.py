"""Helpers shared by test modules: settings isolated from the developer's environment, and
database snapshots for "equals an uninterrupted run" comparisons."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema

# Columns that legitimately differ between two runs loading the same data.
VOLATILE = {"run_id", "ingested_at", "fetched_at", "created_at", "created_run_id", "updated_at"}


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings that read nothing from the environment or `.env`; every source off by default."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "coingecko_enabled": False,
        "coinpaprika_enabled": False,
        "csv_enabled": False,
        "csv_weird_enabled": False,
        "http_max_attempts": 2,
        # Pages one at a time, so request logs are exact; the concurrent crawl has its own tests
        # (tests/sources/test_concurrent_crawl.py) and benchmark.
        "http_max_in_flight": 1,
        "http_max_retry_seconds": 5,
        "http_timeout_seconds": 5,
        "coingecko_rate_limit_per_minute": 100_000,
        "coinpaprika_rate_limit_per_second": 1000,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every durable fact the ETL writes, without run ids and wall-clock times, sorted."""
    tables = [
        schema.raw_payloads,
        schema.assets,
        schema.asset_sources,
        schema.price_history,
        schema.quarantine,
        schema.etl_checkpoints,
        schema.identity_reviews,
    ]
    result: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in tables:
            columns = [c for c in table.columns if c.name not in VOLATILE and c.name != "id"]
            rows = conn.execute(sa.select(*columns)).all()
            result[table.name] = sorted((tuple(map(_plain, row)) for row in rows), key=repr)
    return result


def count(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return repr(sorted(value.items()))
    if isinstance(value, list):
        return repr(value)
    return value
