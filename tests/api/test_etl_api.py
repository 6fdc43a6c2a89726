"""POST /etl/run: auth, sources, 202 with run ids, 409 when busy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.api.run_schemas import StartedRuns
from kasparro.db.engine import write_transaction
from kasparro.etl.lease import Lease, try_acquire
from tests.api.conftest import ADMIN_KEY, api_settings, assert_problem, wait_for_runs

AUTH = {"X-API-Key": ADMIN_KEY}


def test_without_a_configured_key_writes_are_refused_with_how_to_enable(
    database_url: str, engine: Engine
) -> None:
    settings = api_settings(database_url, admin_api_key=None)
    with TestClient(create_app(settings, engine)) as client:
        for headers in ({}, AUTH, {"X-API-Key": ""}):
            response = client.post("/etl/run", headers=headers)
            assert_problem(response, 503, mentions="set ADMIN_API_KEY to enable write endpoints")


def test_401_without_a_key_and_403_with_a_wrong_one(client: TestClient) -> None:
    missing = client.post("/etl/run")
    assert_problem(missing, 401, mentions="X-API-Key")
    assert missing.headers["www-authenticate"]
    assert_problem(client.post("/etl/run", headers={"X-API-Key": "wrong"}), 403)
    assert_problem(client.post("/etl/run", headers={"X-API-Key": ADMIN_KEY + "x"}), 403)
    assert_problem(client.post("/etl/run", headers={"X-API-Key": ADMIN_KEY[:-1]}), 403)
    # The key never appears in an answer.
    assert ADMIN_KEY not in client.post("/etl/run", headers={"X-API-Key": "w"}).text


def test_runs_every_enabled_source_and_answers_202_with_run_ids(
    client: TestClient, engine: Engine
) -> None:
    response = client.post("/etl/run", headers=AUTH)
    assert response.status_code == 202, response.text
    runs = StartedRuns.model_validate(response.json()).runs
    assert [r.source for r in runs] == ["csv", "csv_weird"]
    rows = wait_for_runs(engine, [r.run_id for r in runs])
    assert {r.status for r in rows} == {"success"}
    assert {r.trigger for r in rows} == {"api"}
    for run in runs:
        assert client.get(f"/runs/{run.run_id}").json()["status"] == "success"
    assert client.get("/data").json()["meta"]["total"] > 0


def test_one_source_repeated_is_one_run(client: TestClient, engine: Engine) -> None:
    response = client.post("/etl/run", params=[("source", "csv"), ("source", "csv")], headers=AUTH)
    assert response.status_code == 202
    runs = response.json()["runs"]
    assert [r["source"] for r in runs] == ["csv"]
    wait_for_runs(engine, [runs[0]["run_id"]])


def test_unknown_and_disabled_sources(client: TestClient) -> None:
    unknown = client.post("/etl/run", params={"source": "nasdaq"}, headers=AUTH)
    body = assert_problem(unknown, 422, mentions="`source`")
    assert body["errors"][0]["name"] == "source"
    disabled = client.post("/etl/run", params={"source": "coingecko"}, headers=AUTH)
    assert_problem(disabled, 400, mentions="coingecko")


def test_409_naming_the_running_run(client: TestClient, engine: Engine) -> None:
    with write_transaction(engine) as conn:
        held = try_acquire(
            conn, Lease("etl:csv_weird", "the-running-run"), timedelta(minutes=5), datetime.now(UTC)
        )
        assert held is None
    response = client.post("/etl/run", headers=AUTH)
    body = assert_problem(response, 409, mentions="the-running-run")
    assert body["run_id"] == "the-running-run"
    assert body["source"] == "csv_weird"
    # All or nothing: csv did not start either.
    assert client.get("/runs").json()["meta"]["total"] == 0
