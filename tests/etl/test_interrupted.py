"""At start-up, a run left `running` by a process of this host that is gone is marked
`interrupted` at once (its lease freed), not when its lease expires; another machine's runs and
live processes' runs are left alone."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.db import schema
from kasparro.etl.lease import HOST, interrupt_dead_runs
from tests.api.conftest import api_settings, run_row

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _leave_running(engine: Engine, run_id: str, source: str, holder: str) -> None:
    """A run row still `running`, and its lease, as a killed process leaves them."""
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.etl_runs).values(run_row(run_id, source, "running", NOW)))
        conn.execute(
            sa.insert(schema.etl_locks).values(
                name=f"etl:{source}",
                holder=holder,
                run_id=run_id,
                acquired_at=NOW,
                expires_at=NOW + timedelta(hours=1),  # far from expiring
            )
        )


def _run(engine: Engine, run_id: str) -> sa.Row[tuple[object, ...]]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(schema.etl_runs).where(schema.etl_runs.c.run_id == run_id)
        ).one()


def _leases(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(schema.etl_locks.c.name)))


def test_a_dead_local_holder_run_is_interrupted_at_start_up(
    database_url: str, engine: Engine, dead_pid: int
) -> None:
    _leave_running(engine, "dead-run", "csv", f"{HOST}:{dead_pid}:0badc0de")
    settings = api_settings(database_url, etl_schedule="off", etl_run_on_start=False)
    with TestClient(create_app(settings, engine, scheduler=True)) as client:
        run = _run(engine, "dead-run")
        assert run.status == "interrupted"
        assert run.finished_at is not None
        assert run.error.startswith("interrupted")
        assert "etl:csv" not in _leases(engine)  # the next run starts at once
        listed = client.get("/runs", params={"status": "interrupted"})
        assert listed.status_code == 200, listed.text
        assert [r["run_id"] for r in listed.json()["data"]] == ["dead-run"]
        health = client.get("/health").json()
        assert health["etl"] != "running"


def test_another_machine_and_a_live_process_keep_their_runs(engine: Engine, dead_pid: int) -> None:
    _leave_running(engine, "elsewhere", "csv", f"some-other-host-{HOST}:{dead_pid}:0badc0de")
    _leave_running(engine, "alive", "csv_weird", f"{HOST}:{os.getppid()}:0badc0de")
    _leave_running(engine, "dead", "coingecko", f"{HOST}:{dead_pid}:0badc0de")
    assert interrupt_dead_runs(engine) == ["dead"]
    assert _run(engine, "elsewhere").status == "running"
    assert _run(engine, "alive").status == "running"
    assert _run(engine, "dead").status == "interrupted"
    assert _leases(engine) == {"etl:csv", "etl:csv_weird"}
    assert interrupt_dead_runs(engine) == []  # once only


def test_a_finished_run_under_a_stale_lease_keeps_its_status(engine: Engine, dead_pid: int) -> None:
    _leave_running(engine, "done", "csv", f"{HOST}:{dead_pid}:0badc0de")
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.etl_runs)
            .where(schema.etl_runs.c.run_id == "done")
            .values(status="success", finished_at=NOW)
        )
    interrupt_dead_runs(engine)
    assert _run(engine, "done").status == "success"
    assert _leases(engine) == set()


def test_a_database_that_is_down_does_not_stop_the_start() -> None:
    down = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/x?connect_timeout=2")
    try:
        assert interrupt_dead_runs(down) == []
    finally:
        down.dispose()
