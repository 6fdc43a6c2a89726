"""Data for the curation tests: two CSV sources loaded by the real ETL, with assets a person
would correct, and a `kasparro` CLI run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import run_source
from tests.helpers import settings_for

HEADER = "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"
# ZZA (csv) and QQB (csv_weird) are one coin listed under two tickers and names: a merge.
# SPL is linked across both sources, wrongly: a split. Two csv_weird DUP rows claim the one csv
# DUP asset: the loser is kept apart with a review. SOLO is a csv coin alone.
CSV_ROWS = [
    "ZZA,Zeta Alpha,10,1000000000,5000,2026-05-10",
    "ZZA,Zeta Alpha,10.5,1050000000,5000,2026-05-11",
    "ZZA,Zeta Alpha,11,1100000000,5000,2026-05-12",
    "DUP,Dupe Coin,5,500000000,100,2026-05-12",
    "SPL,Split Coin,2,200000000,100,2026-05-11",
    "SPL,Split Coin,2.1,210000000,100,2026-05-12",
    "SOLO,Solo Coin,3,300000000,100,2026-05-12",
]
WEIRD_ROWS = [
    "QQB,Quark Beta,10.4,1040000000,5000,2026-05-11",
    "QQB,Quark Beta,11.1,1110000000,5000,2026-05-12",
    "DUP,Dupe Coin,5,500000000,100,2026-05-12",
    "DUP,Dupe Coins,5,500000000,100,2026-05-12",
    "SPL,Split Coin,2.05,205000000,100,2026-05-11",
    "SPL,Split Coin,2.1,210000000,100,2026-05-12",
]

ZZA = ("csv", "zza-zeta-alpha")
QQB = ("csv_weird", "qqb-quark-beta")
SPL_WEIRD = ("csv_weird", "spl-split-coin")
SPL_CSV = ("csv", "spl-split-coin")
DUP_LOSER = ("csv_weird", "dup-dupe-coins")
SOLO = ("csv", "solo-solo-coin")


def write_sources(directory: Path) -> tuple[Path, Path]:
    paths = directory / "markets.csv", directory / "weird.csv"
    for path, rows in zip(paths, (CSV_ROWS, WEIRD_ROWS), strict=True):
        path.write_text(HEADER + "".join(row + "\n" for row in rows))
    return paths


def append(path: Path, *rows: str) -> None:
    with path.open("a") as handle:
        handle.writelines(row + "\n" for row in rows)


def source_settings(database_url: str, directory: Path, **overrides: Any) -> Settings:
    csv_path, weird_path = write_sources(directory)
    return settings_for(
        database_url,
        csv_enabled=True,
        csv_weird_enabled=True,
        csv_path=csv_path,
        csv_weird_path=weird_path,
        **overrides,
    )


def load(engine: Engine, settings: Settings, *sources: str) -> None:
    for source in sources or ("csv", "csv_weird"):
        result = run_source(engine, settings, source, trigger="test")
        assert result.status == "success", result


def asset_of(engine: Engine, key: tuple[str, str]) -> str:
    with engine.connect() as conn:
        asset_id = conn.scalar(
            sa.select(schema.asset_sources.c.asset_id).where(
                schema.asset_sources.c.source == key[0],
                schema.asset_sources.c.source_asset_id == key[1],
            )
        )
    assert asset_id is not None, key
    return str(asset_id)


def members(engine: Engine, asset_id: str) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.asset_sources.c.source, schema.asset_sources.c.source_asset_id).where(
                schema.asset_sources.c.asset_id == asset_id
            )
        )
        return {(r.source, r.source_asset_id) for r in rows}


def history(
    engine: Engine, *, asset_id: str | None = None, key: tuple[str, str] | None = None
) -> list[Any]:
    """History rows of an asset, or of a source asset (with the asset each row names)."""
    table = schema.price_history
    stmt = sa.select(table.c.source, table.c.source_asset_id, table.c.asset_id, table.c.observed_at)
    if asset_id is not None:
        stmt = stmt.where(table.c.asset_id == asset_id)
    if key is not None:
        stmt = stmt.where(table.c.source == key[0], table.c.source_asset_id == key[1])
    with engine.connect() as conn:
        return list(conn.execute(stmt).all())


def rows(engine: Engine, table: sa.Table) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table)).all())


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def kasparro(database_url: str, cwd: Path, *args: str, process: bool = False) -> Done:
    """`kasparro ARGS` against this database, with no settings of the developer's: the CLI's
    own entry point in this process, or (`process`) `python -m kasparro.cli` as a user runs it.
    """
    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env.update(
        DATABASE_URL=database_url,
        COINGECKO_ENABLED="false",
        COINPAPRIKA_ENABLED="false",
        COLUMNS="200",
    )
    if process:
        done = subprocess.run(
            [sys.executable, "-m", "kasparro.cli", *args],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Done(done.returncode, done.stdout, done.stderr)
    from typer.testing import CliRunner

    from kasparro.cli import app
    from kasparro.config import get_settings

    cleared = {k: None for k in os.environ if k in names}  # the developer's settings, unset
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, list(args), env={**cleared, **env})
    finally:
        get_settings.cache_clear()
    return Done(result.exit_code, result.stdout, result.stderr)
