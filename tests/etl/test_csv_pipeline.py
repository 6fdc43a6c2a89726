"""The whole pipeline on the CSV sources: load, idempotency, append/rewrite, leases, faults."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import SAMPLES_DIR
from kasparro.db import schema
from kasparro.db.engine import write_transaction
from kasparro.etl.lease import HOST, Lease, try_acquire
from kasparro.etl.runner import SourceBusy, run_source
from tests.helpers import count, settings_for, snapshot

HEADER = "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"


def _write(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_samples_load_and_a_second_run_adds_nothing(database_url: str, engine: Engine) -> None:
    settings = settings_for(database_url, csv_enabled=True, csv_weird_enabled=True)
    first = [run_source(engine, settings, s, trigger="cli") for s in ("csv", "csv_weird")]
    assert [r.status for r in first] == ["success", "success"], [r.error for r in first]
    assert all(r.records_loaded > 0 for r in first)
    assert first[1].records_quarantined > 0  # the messy file has rows that must not load
    history, raws = count(engine, schema.price_history), count(engine, schema.raw_payloads)
    assert history == sum(r.records_loaded for r in first)
    assert count(engine, schema.quarantine) > 0

    second = [run_source(engine, settings, s, trigger="cli") for s in ("csv", "csv_weird")]
    assert [r.status for r in second] == ["success", "success"]
    assert [r.records_loaded for r in second] == [0, 0]
    assert (count(engine, schema.price_history), count(engine, schema.raw_payloads)) == (
        history,
        raws,
    )


def test_btc_from_both_csv_files_is_one_canonical_asset(database_url: str, engine: Engine) -> None:
    settings = settings_for(database_url, csv_enabled=True, csv_weird_enabled=True)
    for source in ("csv", "csv_weird"):
        assert run_source(engine, settings, source, trigger="cli").status == "success"
    with engine.connect() as conn:
        owners = conn.execute(
            sa.select(schema.asset_sources.c.source, schema.asset_sources.c.asset_id).where(
                schema.asset_sources.c.symbol == "BTC"
            )
        ).all()
    assert {source for source, _ in owners} == {"csv", "csv_weird"}
    assert len({asset for _, asset in owners}) == 1


def test_only_appended_rows_are_read_and_a_rewrite_is_detected(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "prices.csv",
        "BTC,Bitcoin,80000,1600000000000,20000000000,2026-05-12",
        "ETH,Ethereum,2300,277000000000,9000000000,2026-05-12",
    )
    settings = settings_for(database_url, csv_enabled=True, csv_path=path)
    assert run_source(engine, settings, "csv", trigger="cli").records_loaded == 2

    with path.open("a") as handle:
        handle.write("BTC,Bitcoin,81000,1610000000000,21000000000,2026-05-13\n")
    appended = run_source(engine, settings, "csv", trigger="cli")
    assert (appended.records_processed, appended.records_loaded) == (1, 1)

    # Rewritten (a corrected ETH price in a row already read): read again from the top. A stored
    # observation is not reprocessed, so only SOL is new.
    _write(
        path,
        "BTC,Bitcoin,80000,1600000000000,20000000000,2026-05-12",
        "ETH,Ethereum,2310,277000000000,9000000000,2026-05-12",
        "BTC,Bitcoin,81000,1610000000000,21000000000,2026-05-13",
        "SOL,Solana,90,48000000000,3000000000,2026-05-13",
    )
    rewritten = run_source(engine, settings, "csv", trigger="cli")
    assert rewritten.records_processed == 4
    assert rewritten.records_loaded == 1
    assert count(engine, schema.price_history) == 4


def test_a_running_source_is_refused_and_a_dead_holder_is_taken_over(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "p.csv", "BTC,Bitcoin,80000,1600000000000,1,2026-05-12")
    settings = settings_for(database_url, csv_enabled=True, csv_path=path)
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        assert (
            try_acquire(conn, Lease("etl:csv", "someone-else"), timedelta(minutes=5), now) is None
        )
    with pytest.raises(SourceBusy):
        run_source(engine, settings, "csv", trigger="cli")

    # A holder on this host whose process is gone: taken over at once, its run marked failed.
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.etl_locks).values(holder=f"{HOST}:999999999:dead", run_id="r0")
        )
        conn.execute(
            sa.insert(schema.etl_runs).values(
                run_id="r0", source="csv", trigger="cli", status="running", started_at=now
            )
        )
    assert run_source(engine, settings, "csv", trigger="cli").status == "success"
    with engine.connect() as conn:
        orphan = conn.execute(
            sa.select(schema.etl_runs).where(schema.etl_runs.c.run_id == "r0")
        ).one()
        assert orphan.status == "failed"
        assert "interrupted" in orphan.error
        assert conn.scalar(sa.select(sa.func.count()).select_from(schema.etl_locks)) == 0


@pytest.mark.parametrize(
    "point", ["after_fetch", "mid_batch", "before_checkpoint", "after_checkpoint"]
)
def test_a_failed_run_resumes_to_the_same_database_as_an_uninterrupted_one(
    database_url: str, engine: Engine, tmp_path: Path, point: str
) -> None:
    path = tmp_path / "markets.csv"
    shutil.copy(SAMPLES_DIR / "markets.csv", path)
    clean = settings_for(database_url, csv_enabled=True, csv_path=path, etl_batch_size=7)
    faulty = clean.model_copy(update={"kasparro_faults": f"csv:{point}:batch=2"})

    failed = run_source(engine, faulty, "csv", trigger="cli")
    assert failed.status == "failed"
    assert failed.failure_point is not None
    assert point in (failed.error or "")
    resumed = run_source(engine, clean, "csv", trigger="cli")
    assert resumed.status == "success"
    interrupted_then_resumed = snapshot(engine)

    with engine.begin() as conn:  # the same load, uninterrupted, from empty
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(sa.delete(table))
    assert run_source(engine, clean, "csv", trigger="cli").status == "success"
    assert snapshot(engine) == interrupted_then_resumed
