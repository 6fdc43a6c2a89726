"""Database blips, on PostgreSQL: connections terminated under the API (pg_terminate_backend, as
a restart or a failover does) cost no failed request, and after an outage the first request
succeeds at once. A read whose connection died is retried once on a fresh one (kasparro.db.retry).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from kasparro.api.queries import data as data_queries
from kasparro.db.engine import create_db_engine
from kasparro.etl.runner import RunResult
from tests.conftest import POSTGRES_ADMIN_URL

# PostgreSQL only: nothing terminates SQLite's connections. (Under CI=true a missing PostgreSQL
# fails these tests, as everywhere: see tests/conftest.py.)
pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

ENDPOINTS = ("/data", "/data?limit=5", "/assets", "/stats", "/health")
TERMINATE_OTHERS = sa.text(
    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@pytest.fixture
def killer(database_url: str) -> Iterator[Engine]:
    """A connection of its own, outside the API's pools, to terminate theirs."""
    engine = create_db_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    yield engine
    engine.dispose()


def retries(driver: str) -> float:
    return REGISTRY.get_sample_value("kasparro_db_read_retries_total", {"driver": driver}) or 0.0


def terminate_all(killer: Engine) -> int:
    with killer.connect() as conn:
        return int(conn.execute(TERMINATE_OTHERS).scalar_one())


def terminate_once_connected(killer: Engine, patience: float = 5.0) -> int:
    """Terminate the burst's connections as soon as there are some: on a busy machine the
    requests may not have opened one 20 ms after they were submitted."""
    deadline = time.monotonic() + patience
    while (terminated := terminate_all(killer)) == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    return terminated


def warm(client: TestClient) -> None:
    for _ in range(3):
        for path in ENDPOINTS:
            assert client.get(path).status_code == 200, path


def test_terminated_connections_cost_no_failed_request(
    client: TestClient, loaded: dict[str, RunResult], killer: Engine
) -> None:
    """Requests in flight while their connections are terminated: every one answers 200."""
    warm(client)
    statuses: list[tuple[str, int]] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            futures = [
                pool.submit(lambda p: (p, client.get(p).status_code), path)
                for _ in range(30)
                for path in ENDPOINTS
            ]
            time.sleep(0.02)  # some requests are running, some queued
            assert terminate_once_connected(killer) > 0
            statuses += [future.result() for future in futures]
            terminate_all(killer)  # and the pools' idle connections, between bursts
    failed = [(path, status) for path, status in statuses if status != 200]
    assert not failed, f"{len(failed)} of {len(statuses)} requests failed: {failed[:10]}"


def test_a_read_whose_connection_dies_is_retried_once_on_a_fresh_one(
    client: TestClient,
    loaded: dict[str, RunResult],
    killer: Engine,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each request's connection is terminated after the pool checked it, before its first
    query ran: the query fails on a dead connection, and is run again on a fresh one."""
    warm(client)
    armed = threading.Event()

    def kill(pid: int) -> None:
        with killer.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

    def before_execute(conn: sa.Connection, *_: Any) -> None:
        if armed.is_set():
            armed.clear()
            kill(conn.connection.dbapi_connection.info.backend_pid)  # type: ignore[union-attr]

    page_json = data_queries.data_page_json

    async def page_on_a_dying_connection(conn: Any, *args: Any, **kwargs: Any) -> Any:
        if armed.is_set():
            armed.clear()
            kill(conn.info.backend_pid)
        return await page_json(conn, *args, **kwargs)

    event.listen(engine, "before_cursor_execute", before_execute)
    monkeypatch.setattr(data_queries, "data_page_json", page_on_a_dying_connection)
    try:
        before = retries("sqlalchemy") + retries("psycopg")
        for path in ENDPOINTS * 3:
            armed.set()
            response = client.get(path)
            assert not armed.is_set(), f"{path} ran no query"
            assert response.status_code == 200, (path, response.text)
        assert retries("sqlalchemy") + retries("psycopg") - before == len(ENDPOINTS) * 3
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)


def test_a_write_is_never_retried(engine: Engine, killer: Engine) -> None:
    """A statement that may have committed before its connection died is not run again."""
    read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    armed = threading.Event()

    def before_execute(conn: sa.Connection, *_: Any) -> None:
        if armed.is_set():
            armed.clear()
            pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            with killer.connect() as k:
                k.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

    event.listen(engine, "before_cursor_execute", before_execute)
    try:
        before = retries("sqlalchemy")
        armed.set()
        with pytest.raises(sa.exc.OperationalError), read_engine.connect() as conn:
            conn.execute(sa.text("CREATE TEMPORARY TABLE blip (x int)"))
        armed.set()
        with pytest.raises(sa.exc.OperationalError), engine.begin() as conn:  # in a transaction
            conn.execute(sa.text("SELECT 1"))
        assert retries("sqlalchemy") == before
    finally:
        event.remove(engine, "before_cursor_execute", before_execute)


def test_after_an_outage_the_first_request_succeeds_at_once(
    client: TestClient, loaded: dict[str, RunResult], database_url: str
) -> None:
    """The database refuses connections for ~8 s, long enough for the /data pool's reconnection
    backoff to wait past its 5 s timeout; once it accepts them again, the next request to every
    endpoint answers 200, without waiting for the pool."""
    warm(client)
    name = make_url(database_url).database
    admin = create_db_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                    "WHERE datname = :name"
                ),
                {"name": name},
            )
        started = time.monotonic()
        for path in ENDPOINTS:
            assert client.get(path).status_code == 503, path
        # Failing fast now: the /data pool is known to be down, no 5 s wait for it.
        t0 = time.monotonic()
        assert client.get("/data").status_code == 503
        assert time.monotonic() - t0 < 3
        time.sleep(max(0.0, 8 - (time.monotonic() - started)))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    for path in ENDPOINTS:
        t0 = time.monotonic()
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert time.monotonic() - t0 < 3, path  # the pool's timeout is 5 s
