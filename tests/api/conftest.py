"""API fixtures: an app over the test database (SQLite and PostgreSQL), with and without data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import RunResult, run_source
from tests.helpers import settings_for

ADMIN_KEY = "test-admin-key-0123456789"


def api_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "csv_enabled": True,
        "csv_weird_enabled": True,
        "admin_api_key": ADMIN_KEY,
        "api_rate_limit_per_minute": 0,
        **overrides,
    }
    return settings_for(database_url, **values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return api_settings(database_url)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> FastAPI:
    return create_app(settings, engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def loaded(settings: Settings, engine: Engine) -> dict[str, RunResult]:
    """Both sample CSV files loaded by the real ETL."""
    results = {s: run_source(engine, settings, s, trigger="test") for s in ("csv", "csv_weird")}
    assert all(r.status == "success" for r in results.values()), results
    return results


def wait_for_runs(engine: Engine, run_ids: list[str], timeout: float = 60) -> list[Any]:
    """Wait until none of these runs is still running; their rows."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(schema.etl_runs).where(schema.etl_runs.c.run_id.in_(run_ids))
            ).all()
        if len(rows) == len(run_ids) and all(r.status != "running" for r in rows):
            return list(rows)
        if time.monotonic() > deadline:
            raise AssertionError(f"runs still running after {timeout} s: {rows}")
        time.sleep(0.05)


def assert_problem(response: Any, status: int, *, mentions: str | None = None) -> dict[str, Any]:
    """A problem document with this status, the request id of the response, and `mentions`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    assert body["request_id"] == response.headers["x-request-id"]
    if mentions is not None:
        assert mentions in body["detail"], body
    assert "Traceback" not in response.text
    return body


def run_row(
    run_id: str,
    source: str,
    status: str,
    started_at: Any,
    finished_at: Any = None,
    **values: Any,
) -> dict[str, Any]:
    """A complete etl_runs row (every key present, so a list of them can be inserted at once)."""
    return {
        "run_id": run_id,
        "source": source,
        "trigger": "test",
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "records_processed": 0,
        "records_loaded": 0,
        "records_unchanged": 0,
        "records_quarantined": 0,
        "batches_committed": 0,
        "duration_ms": None,
        "error": None,
        "failure_point": None,
        **values,
    }
