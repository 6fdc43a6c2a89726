"""GET /livez and GET /readyz on SQLite and PostgreSQL: liveness never needs the database,
readiness needs it reachable and migrated to head."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.api.routes.probes import migration_heads
from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import downgrade, upgrade
from tests.api.conftest import api_settings, assert_problem


def test_both_probes_answer_on_a_migrated_database(client: TestClient) -> None:
    live = client.get("/livez")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready"}


def test_readyz_is_503_while_migrations_are_pending(database_url: str, engine: Engine) -> None:
    downgrade(database_url, "base")
    try:
        with TestClient(create_app(api_settings(database_url), engine)) as client:
            body = assert_problem(client.get("/readyz"), 503, mentions="run the migrations")
            assert body["type"].endswith("migrations-pending")
            assert "no revision" in body["detail"]
            assert client.get("/livez").status_code == 200
    finally:
        upgrade(database_url)
    with TestClient(create_app(api_settings(database_url), engine)) as client:
        assert client.get("/readyz").status_code == 200


def test_readyz_names_a_schema_behind_head(database_url: str, engine: Engine) -> None:
    (head,) = migration_heads()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'older'"))
    try:
        with TestClient(create_app(api_settings(database_url), engine)) as client:
            body = assert_problem(client.get("/readyz"), 503)
            assert "older" in body["detail"]
            assert head in body["detail"]
    finally:  # the PostgreSQL database is shared by the session
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head})


def test_livez_never_touches_a_database_that_is_down(database_url: str) -> None:
    """A database nobody can reach: readiness fails, liveness does not (so no restart loop)."""
    if database_url.startswith("sqlite"):
        unreachable = "sqlite:////nonexistent-dir/for/sure/kasparro.db"
    else:
        unreachable = "postgresql+psycopg://nobody@127.0.0.1:9/nowhere?connect_timeout=1"
    engine = create_db_engine(unreachable) if unreachable.startswith("postgresql") else None
    settings = api_settings(unreachable)
    if engine is None:
        engine = sa.create_engine(unreachable)
    try:
        with TestClient(create_app(settings, engine)) as client:
            assert client.get("/livez").status_code == 200
            body = assert_problem(client.get("/readyz"), 503, mentions="cannot be reached")
            assert "127.0.0.1" not in body["detail"] and "nobody" not in body["detail"]
            assert client.get("/readyz").headers["retry-after"] == "5"
    finally:
        engine.dispose()


def test_probes_are_never_rate_limited(database_url: str, engine: Engine) -> None:
    settings = api_settings(database_url, api_rate_limit_per_minute=1)
    with TestClient(create_app(settings, engine)) as client:
        assert {client.get(path).status_code for path in ["/livez", "/readyz"] * 5} == {200}
