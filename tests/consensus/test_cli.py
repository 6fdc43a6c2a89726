"""`kasparro consensus compute`, as a person or a script runs it (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import run_source
from tests.helpers import settings_for

SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def _cli(cwd: Path, database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update(DATABASE_URL=database_url, COLUMNS="200", LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "kasparro.cli", "consensus", "compute", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compute_every_asset_then_one_and_refuse_an_unknown_one(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    settings = settings_for(database_url, csv_enabled=True)
    assert run_source(engine, settings, "csv", trigger="test").status == "success"
    with engine.connect() as conn:
        linked = conn.scalar(sa.select(sa.func.count(sa.distinct(schema.asset_sources.c.asset_id))))
        btc = conn.scalar(
            sa.select(schema.assets.c.asset_id).where(schema.assets.c.symbol == "BTC")
        )

    every = _cli(tmp_path, database_url, "--json")
    assert every.returncode == 0, every.stderr
    summary = json.loads(every.stdout)
    assert summary["assets"] == summary["written"] == linked
    assert summary["single_source"] == linked  # one CSV file: every price rests on it alone

    one = _cli(tmp_path, database_url, "--asset", str(btc))
    assert one.returncode == 0, one.stderr
    assert "reference prices computed" in one.stdout

    unknown = _cli(tmp_path, database_url, "--asset", "no-such-coin")
    assert unknown.returncode == 2
    assert "no source price for asset(s) no-such-coin" in unknown.stderr
    assert "Traceback" not in unknown.stderr
