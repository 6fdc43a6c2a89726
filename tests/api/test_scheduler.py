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
from kasparro.etl.scheduler import EtlScheduler, parse_schedule, run_enabled_sources
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


def test_a_bad_schedule_fails_at_start(database_url: str, engine: Engine) -> None:
    settings = api_settings(database_url, etl_schedule="61 * * * *")
    with pytest.raises(ValueError, match="ETL_SCHEDULE"):
        create_app(settings, engine, scheduler=True)


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
