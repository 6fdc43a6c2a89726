"""GET /quarantine, /quarantine/{id}, POST /quarantine/replay and the reasons in /stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.api.run_schemas import Stats
from kasparro.api.schemas import QuarantinedRecord, QuarantinePage
from kasparro.db import schema
from kasparro.db.engine import write_transaction
from kasparro.etl.lease import Lease, try_acquire
from kasparro.etl.runner import run_source
from tests.api.conftest import ADMIN_KEY, api_settings, assert_problem, wait_for_runs

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _row(n: int, source: str, code: str, run_id: str, minutes: int) -> dict[str, Any]:
    return {
        "source": source,
        "raw_id": f"{n:064x}",
        "source_asset_id": f"coin-{n}" if n % 2 else None,
        "reason": f"{code} in record {n}",
        "reason_code": code,
        "payload": {"row": {"symbol": f"C{n}", "price_usd": "1,234"}},
        "run_id": run_id,
        "created_at": T0 + timedelta(minutes=minutes),
    }


@pytest.fixture
def held(engine: Engine) -> list[dict[str, Any]]:
    """Six quarantined records of two sources and three runs, one minute apart (id 1 oldest)."""
    rows = [
        _row(1, "csv", "ambiguous_number", "run-a", 0),
        _row(2, "csv", "future_timestamp", "run-a", 1),
        _row(3, "csv_weird", "unstorable_text", "run-b", 2),
        _row(4, "csv", "ambiguous_number", "run-c", 3),
        _row(5, "csv_weird", "ambiguous_number", "run-b", 4),
        _row(6, "csv", "ambiguous_number", "run-c", 5),
    ]
    with write_transaction(engine) as conn:
        conn.execute(sa.insert(schema.quarantine), rows)
    return rows


def _page(client: TestClient, **params: Any) -> QuarantinePage:
    response = client.get("/quarantine", params=params)
    assert response.status_code == 200, response.text
    return QuarantinePage.model_validate(response.json())


def test_the_list_is_newest_first_with_every_field(
    client: TestClient, held: list[dict[str, Any]]
) -> None:
    page = _page(client)
    assert [item.raw_id for item in page.data] == [r["raw_id"] for r in reversed(held)]
    assert (page.meta.count, page.meta.total, page.meta.limit, page.meta.offset) == (6, 6, 100, 0)
    first = page.data[0]
    assert (first.source, first.reason_code, first.run_id, first.source_asset_id) == (
        "csv",
        "ambiguous_number",
        "run-c",
        None,
    )
    assert first.created_at == T0 + timedelta(minutes=5)
    assert first.payload == {"row": {"symbol": "C6", "price_usd": "1,234"}}
    assert page.data[1].source_asset_id == "coin-5"


def test_filters_narrow_the_list(client: TestClient, held: list[dict[str, Any]]) -> None:
    def ids(**params: Any) -> list[str]:
        page = _page(client, **params)
        assert page.meta.total == len(page.data)
        return [item.raw_id[-1] for item in page.data]

    assert ids(source="csv_weird") == ["5", "3"]
    assert ids(run_id="run-c") == ["6", "4"]
    assert ids(reason_code="ambiguous_number") == ["6", "5", "4", "1"]
    assert ids(source="csv", reason_code="ambiguous_number", run_id="run-a") == ["1"]
    assert ids(since="2026-05-01T12:02:00Z", until="2026-05-01T12:04:00+00:00") == ["5", "4", "3"]
    assert ids(since="2026-05-01T14:03:00+02:00") == ["6", "5", "4"]  # same instant as 12:03Z
    assert ids(until="2026-05-01T12:01:00") == ["2", "1"]  # naive means UTC
    assert ids(reason_code="database_rejected") == []
    assert ids(since="2026-05-02T00:00:00Z", until="2026-05-01T00:00:00Z") == []


def test_pages_follow_each_other_without_gap_or_overlap(
    client: TestClient, held: list[dict[str, Any]]
) -> None:
    pages = [_page(client, limit=4, offset=offset) for offset in (0, 4, 8)]
    seen = [item.id for page in pages for item in page.data]
    assert seen == [6, 5, 4, 3, 2, 1]
    assert [p.meta.count for p in pages] == [4, 2, 0]
    assert {p.meta.total for p in pages} == {6}


def test_one_record_and_a_missing_one(client: TestClient, held: list[dict[str, Any]]) -> None:
    listed = _page(client, run_id="run-b").data[0]
    response = client.get(f"/quarantine/{listed.id}")
    assert response.status_code == 200, response.text
    assert QuarantinedRecord.model_validate(response.json()) == listed
    assert_problem(client.get("/quarantine/999"), 404, mentions="999")
    assert_problem(client.get("/quarantine/0"), 422)
    assert_problem(client.get("/quarantine/abc"), 404)
    assert_problem(client.get("/quarantine/replay"), 405)


@pytest.mark.parametrize(
    "params",
    [
        {"source": "nope"},
        {"reason_code": "x" * 33},
        {"run_id": ""},
        {"since": "yesterday"},
        {"until": "0.5"},  # not read as a Unix time
        {"limit": 0},
        {"offset": -1},
    ],
)
def test_bad_parameters_are_refused(client: TestClient, params: dict[str, Any]) -> None:
    assert_problem(client.get("/quarantine", params=params), 422)


def test_stats_count_quarantined_records_per_reason(
    client: TestClient, held: list[dict[str, Any]]
) -> None:
    stats = Stats.model_validate(client.get("/stats").json())
    assert stats.sources["csv"].quarantine_reasons == {
        "ambiguous_number": 3,
        "future_timestamp": 1,
    }
    assert list(stats.sources["csv"].quarantine_reasons) == ["ambiguous_number", "future_timestamp"]
    assert stats.sources["csv_weird"].quarantine_reasons == {
        "ambiguous_number": 1,
        "unstorable_text": 1,
    }
    assert stats.sources["csv"].quarantined == 4


def test_stats_without_quarantine_show_no_reasons(client: TestClient) -> None:
    stats = Stats.model_validate(client.get("/stats").json())
    assert all(s.quarantine_reasons == {} for s in stats.sources.values())


def test_replay_is_for_admins_and_loads_what_its_fix_lets_in(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    ahead = (datetime.now(UTC) + timedelta(hours=2)).isoformat(timespec="seconds")
    path = tmp_path / "prices.csv"
    path.write_text(
        "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"
        f"ETH,Ethereum,2300,277000000000,9000000000,{ahead}\n"
        'DOGE,Dogecoin,"1,234",,,2026-05-12\n'
    )
    strict = api_settings(database_url, csv_path=path)
    assert run_source(engine, strict, "csv", trigger="test").records_quarantined == 2
    relaxed = api_settings(database_url, csv_path=path, future_tolerance_seconds=86_400)
    with TestClient(create_app(relaxed, engine)) as client:
        assert_problem(client.post("/quarantine/replay"), 401)
        assert_problem(client.post("/quarantine/replay", headers={"X-API-Key": "wrong"}), 403)
        admin = {"X-API-Key": ADMIN_KEY}

        with write_transaction(engine) as conn:
            lease = Lease("etl:csv", "someone-else")
            assert try_acquire(conn, lease, timedelta(minutes=5), datetime.now(UTC)) is None
        assert_problem(client.post("/quarantine/replay", headers=admin), 409, mentions="csv")
        with write_transaction(engine) as conn:
            conn.execute(sa.delete(schema.etl_locks))

        # Another source has nothing quarantined: no run.
        other = client.post("/quarantine/replay", params={"source": "csv_weird"}, headers=admin)
        assert (other.status_code, other.json()) == (202, {"runs": []})

        response = client.post("/quarantine/replay", params={"source": "csv"}, headers=admin)
        assert response.status_code == 202, response.text
        (started,) = response.json()["runs"]
        (run,) = wait_for_runs(engine, [started["run_id"]])
        assert (run.trigger, run.status, run.records_processed, run.records_loaded) == (
            "replay",
            "success",
            2,
            1,
        )
        left = _page(client).data
        assert [item.reason_code for item in left] == ["ambiguous_number"]
        shown = client.get(f"/runs/{started['run_id']}").json()
        assert shown["trigger"] == "replay"
