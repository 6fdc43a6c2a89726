"""deploy/postgres/roles.sql on a real PostgreSQL: the owner migrates, the application role runs
the ETL and the API with only the rights it needs, on tables created before and after it ran."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from kasparro.api.app import create_app
from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import MigrationNotPermitted, upgrade
from kasparro.db.planner_stats import MIN_GROWTH, PlannerStatistics
from kasparro.db.schema import asset_sources
from kasparro.etl.runner import run_source
from tests.api.conftest import api_settings
from tests.conftest import IN_CI, POSTGRES_ADMIN_URL

ROLES_SQL = Path(__file__).resolve().parents[1] / "deploy" / "postgres" / "roles.sql"


def _psql(url: str, *args: str) -> None:
    psql = shutil.which("psql")
    if psql is None:
        if IN_CI:
            pytest.fail("psql is required under CI=true")
        pytest.skip("psql is not installed")
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run([psql, "-X", "-q", "-d", plain, *args], check=True, capture_output=True)


@pytest.fixture
def roles(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A new database with the two roles of roles.sql (unique names); (owner URL, app URL)."""
    suffix = uuid.uuid4().hex[:8]
    database, owner, app = f"kasparro_roles_{suffix}", f"k_owner_{suffix}", f"k_app_{suffix}"
    owner_password, app_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    admin = create_db_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    base = make_url(POSTGRES_ADMIN_URL)
    as_admin = base.set(database=database).render_as_string(hide_password=False)
    try:
        _psql(
            as_admin,
            *(
                "-v",
                f"db={database}",
                "-v",
                f"owner={owner}",
                "-v",
                f"owner_password={owner_password}",
            ),
            *("-v", f"app={app}", "-v", f"app_password={app_password}", "-f", str(ROLES_SQL)),
        )
        yield (
            base.set(username=owner, password=owner_password, database=database).render_as_string(
                False
            ),
            base.set(username=app, password=app_password, database=database).render_as_string(
                False
            ),
        )
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{app}"'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{owner}"'))
        admin.dispose()


def test_the_application_role_reads_and_writes_rows_and_changes_no_schema(
    roles: tuple[str, str],
) -> None:
    owner_url, app_url = roles
    with pytest.raises(MigrationNotPermitted, match="as the schema's owner"):
        upgrade(app_url)  # a plain message, not a traceback, for the wrong role
    upgrade(owner_url)  # tables created after roles.sql: default privileges apply
    engine = create_db_engine(app_url)
    try:
        settings = api_settings(app_url, migrate_on_start=False)
        result = run_source(engine, settings, "csv", trigger="test")
        assert result.status == "success", result
        assert result.records_loaded > 0
        with TestClient(create_app(settings, engine)) as client:
            assert client.get("/readyz").status_code == 200
            assert client.get("/data").json()["meta"]["count"] > 0
        upgrade(app_url)  # at head: a no-op the application role may do
        # A large load's ANALYZE runs as the owner (before PostgreSQL 17 only the owner may):
        # the planner then knows the rows, instead of a skipped ANALYZE and a warning.
        reltuples = "SELECT reltuples FROM pg_class WHERE oid = 'asset_sources'::regclass"
        with engine.connect() as conn:
            assert conn.scalar(sa.text(reltuples)) == -1  # never analyzed
            rows = conn.scalar(sa.select(sa.func.count()).select_from(asset_sources))
        stats = PlannerStatistics(engine)
        assert stats.grew(MIN_GROWTH) is True
        stats.wait()
        with engine.connect() as conn:
            assert conn.scalar(sa.text(reltuples)) == rows > 0
        with engine.connect() as conn:
            refused = r"permission denied|must be owner"
            for ddl in ("CREATE TABLE intruder (x int)", "DROP TABLE etl_runs"):
                with pytest.raises(sa.exc.ProgrammingError, match=refused):
                    conn.execute(sa.text(ddl))
                conn.rollback()
    finally:
        engine.dispose()
