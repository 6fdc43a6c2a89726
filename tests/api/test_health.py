"""GET /health: database reachability and the ETL's state per enabled source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.api.schemas import Health
from kasparro.db import schema
from kasparro.db.engine import create_db_engine
from kasparro.etl.runner import RunResult, run_source
from tests.api.conftest import api_settings, assert_problem, run_row


def test_idle_with_no_runs_lists_every_enabled_source(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    Health.model_validate(body)
    assert body["status"] == "ok"
    assert (body["db"], body["database"], body["etl"]) == ("ok", "connected", "idle")
    assert set(body["sources"]) == {"csv", "csv_weird"}
    assert body["sources"]["csv"] == {
        "last_status": None,
        "last_success_at": None,
        "last_failure_at": None,
        "last_error": None,
        "newest_observation_at": None,
        "observation_age_seconds": None,
        "stale": False,  # never run: a new install is not stale
    }


def test_after_successful_runs(client: TestClient, loaded: dict[str, RunResult]) -> None:
    body = client.get("/health").json()
    assert body["etl"] == "idle"
    for name in ("csv", "csv_weird"):
        source = body["sources"][name]
        assert source["last_status"] == "success"
        assert source["last_success_at"] is not None
        assert source["last_failure_at"] is None
        assert source["newest_observation_at"] is not None
        assert source["observation_age_seconds"] > 0
        assert source["stale"] is False
    assert body["status"] == "ok"
    metrics = client.get("/metrics").text
    assert 'kasparro_source_newest_observation_timestamp_seconds{source="csv"}' in metrics


def test_offline_api_source_fails_cleanly_and_health_says_which(
    database_url: str, engine: Engine
) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    settings = api_settings(
        database_url,
        coingecko_enabled=True,
        coingecko_base_url="http://127.0.0.1:9/api/v3",
        http_max_attempts=1,
    )
    assert run_source(engine, settings, "csv", trigger="test").status == "success"
    failed = run_source(engine, settings, "coingecko", trigger="test")
    assert failed.status == "failed"
    with TestClient(create_app(settings, engine)) as client:
        body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["etl"] == "failing"
    assert body["sources"]["coingecko"]["last_status"] == "failed"
    assert body["sources"]["coingecko"]["last_failure_at"] is not None
    assert body["sources"]["coingecko"]["last_error"]
    assert body["sources"]["csv"]["last_status"] == "success"


def test_running_and_a_later_success_clears_failing(client: TestClient, engine: Engine) -> None:
    now = datetime.now(UTC)
    year_ago = now - timedelta(days=365)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.etl_runs),
            [
                run_row("r-failed", "csv", "failed", year_ago, year_ago, error="boom"),
                run_row("r-ok", "csv", "success", now, now),
                run_row("r-running", "csv_weird", "running", now),
            ],
        )
    body = client.get("/health").json()
    assert body["etl"] == "running"
    assert body["sources"]["csv"]["last_status"] == "success"
    assert body["sources"]["csv"]["last_failure_at"] is not None
    assert body["sources"]["csv_weird"]["last_status"] == "running"


def test_a_source_without_a_recent_success_is_stale(client: TestClient, engine: Engine) -> None:
    now = datetime.now(UTC)
    two_hours_ago = now - timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.etl_runs),
            [
                run_row("r-old", "csv", "success", two_hours_ago, two_hours_ago),
                run_row("r-new", "csv_weird", "success", now, now),
            ],
        )
    body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["etl"] == "idle"
    assert body["sources"]["csv"]["stale"] is True
    assert body["sources"]["csv_weird"]["stale"] is False


def _down_engines(database_url: str, tmp_path: Path) -> Engine:
    if database_url.startswith("sqlite"):
        # A database file in a folder that does not exist: SQLite cannot open it.
        return sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'k.db'}")
    # A closed port on loopback.
    return create_db_engine("postgresql+psycopg://postgres@127.0.0.1:1/kasparro")


def test_503_when_the_database_is_down(database_url: str, tmp_path: Path) -> None:
    settings = api_settings(database_url)
    engine = _down_engines(database_url, tmp_path)
    with TestClient(create_app(settings, engine)) as client:
        response = client.get("/health")
        assert response.status_code == 503
        body = response.json()
        Health.model_validate(body)
        assert (body["status"], body["db"], body["database"]) == ("error", "down", "disconnected")
        assert "x-request-id" in response.headers

        # Other endpoints answer with a problem that names no host, port or user.
        data = client.get("/data")
        problem = assert_problem(data, 503, mentions="database")
        assert "127.0.0.1" not in data.text
        assert "postgres" not in problem["detail"]
    engine.dispose()
