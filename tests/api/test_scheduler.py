"""The in-process ETL schedule: ETL_SCHEDULE parsing, the start-up run, busy sources."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.db import schema
from kasparro.db.engine import write_transaction
from kasparro.etl.lease import Lease, try_acquire
from kasparro.etl.scheduler import (
    EtlScheduler,
    claim_slots,
    current_slot,
    parse_schedule,
    run_enabled_sources,
)
from tests.api.conftest import api_settings, wait_for_runs


@pytest.mark.parametrize("value", ["off", "OFF", "", "  ", "none", "disabled"])
def test_schedule_can_be_turned_off(value: str) -> None:
    assert parse_schedule(value) is None


def test_schedule_is_a_crontab_line() -> None:
    trigger = parse_schedule("*/10 * * * *")
    assert trigger is not None
    now = datetime(2026, 1, 1, 12, 3, tzinfo=UTC)
    assert trigger.get_next_fire_time(None, now) == datetime(2026, 1, 1, 12, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="ETL_SCHEDULE"):
        parse_schedule("every ten minutes")
    with pytest.raises(ValueError, match="ETL_SCHEDULE"):
        parse_schedule("*/10 * * *")


def test_a_bad_schedule_is_refused_with_the_settings(database_url: str) -> None:
    # Checked with every other setting, before anything starts (no migration, no ETL, no port).
    with pytest.raises(ValueError, match="ETL_SCHEDULE"):
        api_settings(database_url, etl_schedule="61 * * * *")


def _runs(engine: Engine) -> list[sa.Row[tuple[str, str, str]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    schema.etl_runs.c.run_id, schema.etl_runs.c.source, schema.etl_runs.c.trigger
                )
            )
        )


def test_the_app_runs_every_enabled_source_at_start(database_url: str, engine: Engine) -> None:
    settings = api_settings(database_url, etl_schedule="off", etl_run_on_start=True)
    with TestClient(create_app(settings, engine, scheduler=True)) as client:
        deadline = time.monotonic() + 30
        while len(_runs(engine)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        runs = _runs(engine)
        assert sorted(r.source for r in runs) == ["csv", "csv_weird"]
        assert {r.trigger for r in runs} == {"startup"}
        finished = wait_for_runs(engine, [r.run_id for r in runs])
        assert {r.status for r in finished} == {"success"}
        assert client.get("/health").json()["etl"] == "idle"
        assert client.app.state.scheduler.running  # type: ignore[attr-defined]
    assert not client.app.state.scheduler.running  # type: ignore[attr-defined]


def test_no_start_up_run_when_asked_and_the_schedule_is_armed(
    database_url: str, engine: Engine
) -> None:
    settings = api_settings(database_url, etl_schedule="0 0 1 1 *", etl_run_on_start=False)
    scheduler = EtlScheduler(engine, settings)
    scheduler.start()
    try:
        next_run = scheduler.next_run_time()
        assert next_run is not None
        assert (next_run.month, next_run.day, next_run.hour) == (1, 1, 0)
        time.sleep(0.3)
        assert _runs(engine) == []
    finally:
        scheduler.shutdown()


def test_a_busy_source_is_skipped_and_the_others_run(database_url: str, engine: Engine) -> None:
    settings = api_settings(database_url)
    with write_transaction(engine) as conn:
        lease = Lease("etl:csv", "elsewhere")
        assert try_acquire(conn, lease, timedelta(minutes=5), datetime.now(UTC)) is None
    started = run_enabled_sources(engine, settings, trigger="schedule")
    assert [r.source for r in started] == ["csv_weird"]
    wait_for_runs(engine, [r.run_id for r in started])


def test_a_slot_runs_once_across_schedulers_however_quick_the_run(
    database_url: str, engine: Engine
) -> None:
    """Three schedulers' ticks for one slot, one after the other: the first runs every source,
    the later ones find the slot claimed, although the first's runs have long finished."""
    settings = api_settings(database_url, etl_schedule="* * * * *", etl_run_on_start=False)
    if datetime.now(UTC).second >= 50:  # keep the three ticks inside one minute's slot
        time.sleep(61 - datetime.now(UTC).second)
    schedulers = [EtlScheduler(engine, settings) for _ in range(3)]
    schedulers[0]._tick("schedule")
    first = _runs(engine)
    assert sorted(r.source for r in first) == ["csv", "csv_weird"]
    wait_for_runs(engine, [r.run_id for r in first])  # leases released: only the claim remains
    for later in schedulers[1:]:
        later._tick("schedule")
    assert sorted(_runs(engine)) == sorted(first)


def test_slots_are_the_latest_fire_time_and_claimed_once(database_url: str, engine: Engine) -> None:
    trigger = parse_schedule("*/10 * * * *")
    assert trigger is not None
    at = datetime(2026, 1, 1, 12, 10, 0, 300_000, tzinfo=UTC)
    slot = current_slot(trigger, at)
    assert slot == datetime(2026, 1, 1, 12, 10, tzinfo=UTC)
    assert current_slot(trigger, at + timedelta(seconds=45)) == slot  # a late tick, same slot
    now_slot = current_slot(trigger, datetime.now(UTC))
    assert claim_slots(engine, ["csv", "csv_weird"], now_slot) == ["csv", "csv_weird"]
    assert claim_slots(engine, ["csv", "csv_weird"], now_slot) == []
    assert claim_slots(engine, ["csv"], now_slot + timedelta(minutes=10)) == ["csv"]
    # Claims are forgotten a day after their slot, at the next claim.
    assert claim_slots(engine, ["csv"], slot) == ["csv"]
    assert claim_slots(engine, ["csv_weird"], now_slot + timedelta(minutes=20)) == ["csv_weird"]
    with engine.connect() as conn:
        names = list(conn.execute(sa.select(schema.etl_locks.c.name)).scalars())
    assert len(names) == 4
    assert not any("20260101" in name for name in names)
