"""Recovery, for every source and every fault point, on SQLite and PostgreSQL.

A run fails at the point, a clean rerun succeeds, and the database then equals that of one
uninterrupted run exactly: rows, history, identity mappings, checkpoints, raw payloads.
A second matrix kills the ETL process itself (SIGKILL) at each point instead of raising.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.faults import POINTS
from kasparro.etl.runner import run_source
from kasparro.fakes.faults import Fault
from kasparro.fakes.server import FakeUpstreams
from kasparro.sources.registry import source_names
from tests.helpers import settings_for, snapshot

BATCH = 6  # CSV and CoinPaprika rows per batch; CoinGecko pages of the same size


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=40) as upstreams:
        yield upstreams


def matrix_settings(database_url: str, fake: FakeUpstreams, source: str) -> Settings:
    # Every API source pointed at its fake (each plugin's own settings), then the matrix's paging.
    return settings_for(
        database_url,
        **{
            **fake.settings(),
            f"{source}_enabled": True,
            "coingecko_per_page": BATCH,
            "coingecko_max_pages": 100,
            "etl_batch_size": BATCH,
        },
    )


def _wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(sa.delete(table))


def _uninterrupted(engine: Engine, settings: Settings, source: str) -> tuple[dict[str, list], int]:
    """The state one clean run leaves, and how many batches it committed."""
    _wipe(engine)
    result = run_source(engine, settings, source, trigger="test")
    assert result.status == "success"
    state = snapshot(engine)
    with engine.connect() as conn:
        batches = conn.scalar(
            sa.select(schema.etl_runs.c.batches_committed).where(
                schema.etl_runs.c.run_id == result.run_id
            )
        )
    _wipe(engine)
    return state, int(batches or 0)


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("source", source_names())
def test_a_failed_run_then_a_rerun_equals_an_uninterrupted_run(
    database_url: str, engine: Engine, fake: FakeUpstreams, source: str, point: str
) -> None:
    clean = matrix_settings(database_url, fake, source)
    expected, batches = _uninterrupted(engine, clean, source)
    assert batches >= 1

    # The second batch, so one is committed before the fault; an exchange's one snapshot: the first.
    batch = min(2, batches)
    faulty = clean.model_copy(update={"kasparro_faults": f"{source}:{point}:batch={batch}"})
    failed = run_source(engine, faulty, source, trigger="test")
    assert failed.status == "failed"
    assert f"injected fault at {point}" in (failed.error or "")
    assert failed.failure_point
    with engine.connect() as conn:
        recorded = conn.execute(
            sa.select(schema.etl_runs.c.status, schema.etl_runs.c.failure_point).where(
                schema.etl_runs.c.run_id == failed.run_id
            )
        ).one()
    assert recorded.status == "failed" and recorded.failure_point == failed.failure_point

    assert run_source(engine, clean, source, trigger="test").status == "success"
    assert snapshot(engine) == expected


def _cli_env(settings: Settings, faults: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COINGECKO_", "CSV_"))}
    env.update(
        DATABASE_URL=settings.resolved_database_url,
        COINGECKO_ENABLED=str(settings.coingecko_enabled).lower(),
        COINPAPRIKA_ENABLED=str(settings.coinpaprika_enabled).lower(),
        CSV_ENABLED=str(settings.csv_enabled).lower(),
        CSV_WEIRD_ENABLED=str(settings.csv_weird_enabled).lower(),
        COINGECKO_BASE_URL=settings.coingecko_base_url or "",
        COINGECKO_PER_PAGE=str(settings.coingecko_per_page),
        COINGECKO_MAX_PAGES=str(settings.coingecko_max_pages),
        COINGECKO_RATE_LIMIT_PER_MINUTE="100000",
        COINPAPRIKA_BASE_URL=settings.coinpaprika_base_url or "",
        COINPAPRIKA_RATE_LIMIT_PER_SECOND="1000",
        ETL_BATCH_SIZE=str(settings.etl_batch_size),
        ETL_LOCK_LEASE_SECONDS="5",
        KASPARRO_FAULTS=faults,
        LOG_FORMAT="json",
    )
    return env


def _etl_process(settings: Settings, source: str, faults: str, cwd: Path) -> int:
    command = [sys.executable, "-m", "kasparro.cli", "etl", "run", "--source", source]
    done = subprocess.run(
        command, env=_cli_env(settings, faults), cwd=cwd, capture_output=True, timeout=120
    )
    return done.returncode


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("source", ["coingecko", "csv_weird"])
def test_a_killed_process_then_a_rerun_equals_an_uninterrupted_run(
    database_url: str,
    engine: Engine,
    fake: FakeUpstreams,
    tmp_path: Path,
    source: str,
    point: str,
) -> None:
    clean = matrix_settings(database_url, fake, source)
    expected, _ = _uninterrupted(engine, clean, source)

    killed = _etl_process(clean, source, f"{source}:{point}:batch=2:action=kill", tmp_path)
    assert killed == -9  # SIGKILL: no cleanup ran, the lease and the run row are left behind
    with engine.connect() as conn:
        assert conn.scalar(sa.select(schema.etl_runs.c.status)) == "running"

    # The dead holder's lease is taken over at once (same host, process gone).
    assert _etl_process(clean, source, "", tmp_path) == 0
    assert snapshot(engine) == expected
    with engine.connect() as conn:
        statuses = sorted(conn.scalars(sa.select(schema.etl_runs.c.status)))
    assert statuses == ["failed", "success"]


def test_kills_at_random_moments_lose_and_duplicate_nothing(
    database_url: str, engine: Engine, fake: FakeUpstreams, tmp_path: Path
) -> None:
    rng = random.Random(20261123)
    clean = matrix_settings(database_url, fake, "coingecko")
    expected, _ = _uninterrupted(engine, clean, "coingecko")
    # Slow pages stretch the run so a kill lands anywhere in it: mid-request, mid-transaction.
    fake.state.add_faults([Fault("slow", times=10_000, seconds=0.05, vendor="coingecko")])
    try:
        command = [sys.executable, "-m", "kasparro.cli", "etl", "run", "--source", "coingecko"]
        for _ in range(3):
            process = subprocess.Popen(
                command,
                env=_cli_env(clean, ""),
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.5, 2.0))
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
    finally:
        fake.state.clear_faults()
    assert _etl_process(clean, "coingecko", "", tmp_path) == 0
    assert snapshot(engine) == expected
