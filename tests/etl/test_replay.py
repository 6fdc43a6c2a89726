"""Replaying quarantine: what a fixed cause lets in is loaded once, the rest stays as it was."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from kasparro.cli import app
from kasparro.config import get_settings
from kasparro.db import schema
from kasparro.db.engine import write_transaction
from kasparro.etl.lease import Lease, try_acquire
from kasparro.etl.replay import Selection, replay_source, sources_to_replay
from kasparro.etl.runner import SourceBusy, run_source
from tests.helpers import settings_for, snapshot

HEADER = "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"
DAY = 86_400


def _csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def _ahead(hours: int = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


def _quarantined(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(schema.quarantine).order_by(schema.quarantine.c.id)))


def _run(engine: Engine, run_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(schema.etl_runs).where(schema.etl_runs.c.run_id == run_id)
        ).one()


def _messy(tmp_path: Path) -> Path:
    """One good row, one ambiguous price with nothing to prove its convention, one dated two
    hours ahead, one line with too few fields."""
    return _csv(
        tmp_path,
        "BTC,Bitcoin,80000,1600000000000,20000000000,2026-05-12",
        'DOGE,Dogecoin,"1,234",,,2026-05-12',
        f"ETH,Ethereum,2300,277000000000,9000000000,{_ahead()}",
        "SOL,Solana,150",
    )


def test_a_fixed_cause_is_loaded_once_and_leaves_quarantine(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path,
        "BTC,Bitcoin,80000,1600000000000,20000000000,2026-05-12",
        f"ETH,Ethereum,2300,277000000000,9000000000,{_ahead()}",
    )
    strict = settings_for(database_url, csv_enabled=True, csv_path=path)
    first = run_source(engine, strict, "csv", trigger="cli")
    assert (first.status, first.records_loaded, first.records_quarantined) == ("success", 1, 1)
    (held,) = _quarantined(engine)
    assert held.reason_code == "future_timestamp"

    # The fix: the upstream clock is known to run ahead, the tolerance is widened.
    relaxed = settings_for(
        database_url, csv_enabled=True, csv_path=path, future_tolerance_seconds=DAY
    )
    assert sources_to_replay(engine, Selection()) == ["csv"]
    result = replay_source(engine, relaxed, "csv")
    assert result.status == "success", result.error
    assert (result.records_processed, result.records_loaded, result.records_quarantined) == (
        1,
        1,
        0,
    )
    assert _quarantined(engine) == []
    run = _run(engine, result.run_id)
    assert (run.trigger, run.status, run.records_loaded, run.batches_committed) == (
        "replay",
        "success",
        1,
        1,
    )
    with engine.connect() as conn:
        history = conn.execute(
            sa.select(schema.price_history).where(schema.price_history.c.raw_id == held.raw_id)
        ).one()
        latest = conn.execute(
            sa.select(schema.asset_sources.c.raw_id).where(
                schema.asset_sources.c.source_asset_id == held.source_asset_id
            )
        ).scalar_one()
        kinds = set(
            conn.scalars(
                sa.select(schema.anomalies.c.kind).where(schema.anomalies.c.run_id == result.run_id)
            )
        )
    assert (history.source_asset_id, history.price_usd, history.run_id) == (
        held.source_asset_id,
        2300,
        result.run_id,
    )
    assert latest == held.raw_id
    # Its reference price follows at once, as after an ETL cycle (the run alone computed none).
    with engine.connect() as conn:
        referenced = conn.scalars(
            sa.select(schema.reference_prices.c.price_usd).where(
                schema.reference_prices.c.asset_id == history.asset_id
            )
        ).all()
    assert referenced == [2300]
    assert "record_count_drop" not in kinds  # a replay is not compared with the source's runs

    # Nothing left to replay: a second replay loads and changes nothing, nor does a rerun.
    before = snapshot(engine)
    assert sources_to_replay(engine, Selection()) == []
    again = replay_source(engine, relaxed, "csv")
    assert (again.status, again.records_processed, again.records_loaded) == ("success", 0, 0)
    assert run_source(engine, relaxed, "csv", trigger="cli").records_loaded == 0
    assert snapshot(engine) == before


def test_a_replay_with_nothing_fixed_changes_nothing(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    settings = settings_for(database_url, csv_enabled=True, csv_path=_messy(tmp_path))
    assert run_source(engine, settings, "csv", trigger="cli").records_quarantined == 3
    codes = sorted(row.reason_code for row in _quarantined(engine))
    assert codes == ["ambiguous_number", "future_timestamp", "malformed_line"]
    before = snapshot(engine)
    time.sleep(1.1)  # a later clock: a future_timestamp's check names another horizon

    result = replay_source(engine, settings, "csv")
    # A malformed line holds no record to normalize: it is not replayed.
    assert result.status == "success", result.error
    assert (result.records_processed, result.records_loaded, result.records_quarantined) == (
        2,
        0,
        2,
    )
    assert snapshot(engine) == before
    assert _run(engine, result.run_id).trigger == "replay"
    assert sources_to_replay(engine, Selection(reason_code="malformed_line")) == []


def test_a_record_that_still_fails_keeps_its_row_with_its_reason_brought_up_to_date(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    settings = settings_for(database_url, csv_enabled=True, csv_path=_messy(tmp_path))
    first = run_source(engine, settings, "csv", trigger="cli")
    ambiguous = next(r for r in _quarantined(engine) if r.reason_code == "ambiguous_number")
    # As an older version classified it.
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(schema.quarantine)
            .where(schema.quarantine.c.id == ambiguous.id)
            .values(reason_code="invalid", reason="refused by an older version")
        )
    replay_source(engine, settings, "csv", Selection(reason_code="invalid"))
    (now,) = [r for r in _quarantined(engine) if r.id == ambiguous.id]
    assert (now.reason_code, now.reason) == ("ambiguous_number", ambiguous.reason)
    assert (now.run_id, now.created_at, now.payload) == (
        first.run_id,
        ambiguous.created_at,
        ambiguous.payload,
    )


def test_a_replay_takes_only_what_it_is_asked_for_and_waits_for_its_source(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = _messy(tmp_path)
    strict = settings_for(database_url, csv_enabled=True, csv_path=path)
    first = run_source(engine, strict, "csv", trigger="cli")
    relaxed = settings_for(
        database_url, csv_enabled=True, csv_path=path, future_tolerance_seconds=DAY
    )

    only_ambiguous = replay_source(
        engine, relaxed, "csv", Selection(reason_code="ambiguous_number")
    )
    assert (only_ambiguous.records_processed, only_ambiguous.records_loaded) == (1, 0)
    assert len(_quarantined(engine)) == 3
    assert sources_to_replay(engine, Selection(run_id="no-such-run")) == []

    with write_transaction(engine) as conn:
        lease = Lease("etl:csv", "someone-else")
        assert try_acquire(conn, lease, timedelta(minutes=5), datetime.now(UTC)) is None
    with pytest.raises(SourceBusy):
        replay_source(engine, relaxed, "csv")
    with write_transaction(engine) as conn:
        conn.execute(sa.delete(schema.etl_locks))

    future = Selection(run_id=first.run_id, reason_code="future_timestamp")
    assert replay_source(engine, relaxed, "csv", future).records_loaded == 1
    left = sorted(r.reason_code for r in _quarantined(engine))
    assert left == ["ambiguous_number", "malformed_line"]


def test_the_command_line_lists_shows_and_replays(
    database_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _csv(tmp_path, f"ETH,Ethereum,2300,277000000000,9000000000,{_ahead()}")
    settings = settings_for(database_url, csv_enabled=True, csv_path=path)
    run_source(engine, settings, "csv", trigger="cli")
    monkeypatch.chdir(tmp_path)  # no .env
    environment = {
        "DATABASE_URL": database_url,
        "CSV_ENABLED": "true",
        "CSV_PATH": str(path),
        "CSV_WEIRD_ENABLED": "false",
        "COINGECKO_ENABLED": "false",
        "COINPAPRIKA_ENABLED": "false",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)

    def invoke(*args: str) -> Any:
        get_settings.cache_clear()
        return CliRunner().invoke(app, list(args))

    try:
        listed = invoke("quarantine", "list", "--json", "--source", "csv")
        assert listed.exit_code == 0, listed.output
        (item,) = json.loads(listed.stdout)
        assert item["reason_code"] == "future_timestamp"
        assert item["payload"]["row"]["symbol"] == "ETH"
        shown = invoke("quarantine", "show", str(item["id"]))
        assert shown.exit_code == 0, shown.output
        assert item["raw_id"] in shown.stdout.replace("\n", "").replace("│", "").replace(" ", "")
        assert invoke("quarantine", "show", "999999").exit_code == 1
        assert invoke("quarantine", "list", "--source", "nope").exit_code == 2

        monkeypatch.setenv("FUTURE_TOLERANCE_SECONDS", str(DAY))
        replayed = invoke("etl", "replay", "--source", "csv")
        assert replayed.exit_code == 0, replayed.output
        assert json.loads(invoke("quarantine", "list", "--json").stdout) == []
        again = invoke("etl", "replay")
        assert again.exit_code == 0 and "nothing to replay" in again.output
    finally:
        get_settings.cache_clear()
