"""GET /stats, /runs, /runs/{run_id} and /runs/compare."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.run_schemas import RunComparison, RunDetail, RunPage, Stats
from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import RunResult, run_source
from tests.api.conftest import assert_problem, run_row

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_stats_per_source(
    client: TestClient, settings: Settings, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    # A second, empty run of csv: the last run processed nothing new, the total adds up both.
    again = run_source(engine, settings, "csv", trigger="test")
    body = Stats.model_validate(client.get("/stats").json())
    with engine.connect() as conn:
        quarantined: dict[str, int] = dict(
            conn.execute(
                sa.select(schema.quarantine.c.source, sa.func.count()).group_by(
                    schema.quarantine.c.source
                )
            ).all()
        )
        linked: dict[str, int] = dict(
            conn.execute(
                sa.select(schema.asset_sources.c.source, sa.func.count()).group_by(
                    schema.asset_sources.c.source
                )
            ).all()
        )
        assets_total = conn.scalar(sa.select(sa.func.count()).select_from(schema.assets))
    assert set(body.sources) == {"csv", "csv_weird"}
    assert body.assets_total == assets_total
    csv = body.sources["csv"]
    assert csv.enabled
    assert csv.runs_total == 2
    assert csv.last_run_id == again.run_id
    assert csv.last_run_status == "success"
    assert csv.last_run_records_processed == again.records_processed
    assert csv.last_run_duration_ms == again.duration_ms
    assert csv.records_processed_total == (
        loaded["csv"].records_processed + again.records_processed
    )
    assert csv.last_success_at is not None
    assert csv.last_failure_at is None
    assert not csv.running
    assert csv.assets == linked["csv"]
    weird = body.sources["csv_weird"]
    assert weird.quarantined == quarantined["csv_weird"] > 0
    assert weird.quarantined == loaded["csv_weird"].records_quarantined
    assert weird.assets == linked["csv_weird"]


def test_stats_includes_sources_with_history_even_when_disabled(
    client: TestClient, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.etl_runs).values(
                run_row("g1", "coingecko", "failed", T0, T0, duration_ms=5, error="offline")
            )
        )
    body = client.get("/stats").json()
    gecko = body["sources"]["coingecko"]
    assert not gecko["enabled"]
    assert gecko["last_run_status"] == "failed"
    assert gecko["last_failure_at"] is not None
    assert gecko["last_run_duration_ms"] == 5


def _seed_runs(engine: Engine) -> list[dict[str, Any]]:
    rows = [
        run_row("r1", "csv", "success", T0, T0 + timedelta(seconds=1), records_processed=3),
        run_row("r2", "csv_weird", "failed", T0 + timedelta(minutes=1), T0, error="bad file"),
        run_row("r3", "csv", "running", T0 + timedelta(minutes=2)),
        run_row(
            "r4",
            "csv",
            "failed",
            T0 + timedelta(minutes=3),
            T0 + timedelta(minutes=4),
            records_processed=7,
            records_loaded=2,
            duration_ms=60000,
            error="SourceError: boom",
            failure_point="batch rows 1-7",
        ),
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.etl_runs), rows)
    return rows


def test_runs_newest_first_with_filters_and_pages(client: TestClient, engine: Engine) -> None:
    _seed_runs(engine)
    body = RunPage.model_validate(client.get("/runs").json())
    assert [r.run_id for r in body.data] == ["r4", "r3", "r2", "r1"]
    assert body.meta.total == 4

    def ids(**params: Any) -> list[str]:
        return [r["run_id"] for r in client.get("/runs", params=params).json()["data"]]

    assert ids(source="csv") == ["r4", "r3", "r1"]
    assert ids(status="failed") == ["r4", "r2"]
    assert ids(source="csv", status="failed") == ["r4"]
    assert ids(limit=2, offset=1) == ["r3", "r2"]
    page = client.get("/runs", params={"limit": 2, "offset": 1}).json()["meta"]
    assert (page["limit"], page["offset"], page["count"], page["total"]) == (2, 1, 2, 4)


def test_one_run_has_every_column(client: TestClient, engine: Engine) -> None:
    _seed_runs(engine)
    response = client.get("/runs/r4")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {c.name for c in schema.etl_runs.columns} | {"drift_events", "anomalies"}
    run = RunDetail.model_validate(body)
    assert (run.drift_events, run.anomalies) == ([], [])
    assert run.error == "SourceError: boom"
    assert run.failure_point == "batch rows 1-7"
    assert run.duration_ms == 60000
    assert (run.records_processed, run.records_loaded) == (7, 2)
    assert_problem(client.get("/runs/nope"), 404, mentions="nope")


@pytest.mark.parametrize(
    ("params", "name"), [({"status": "sleeping"}, "status"), ({"source": "x"}, "source")]
)
def test_runs_bad_parameters(client: TestClient, params: dict[str, str], name: str) -> None:
    assert_problem(client.get("/runs", params=params), 422, mentions=f"`{name}`")


def _history(run_id: str, rows: list[tuple[str, float, int]]) -> list[dict[str, Any]]:
    return [
        {
            "source": "csv",
            "source_asset_id": said,
            "observed_at": T0 + timedelta(days=day),
            "asset_id": said.lower(),
            "price_usd": price,
            "market_cap_usd": None,
            "volume_24h_usd": None,
            "ingested_at": T0,
            "run_id": run_id,
            "raw_id": f"{run_id}-{said}-{day}".ljust(64, "0"),
        }
        for said, price, day in rows
    ]


def test_compare_counts_assets_and_price_moves(client: TestClient, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.etl_runs),
            [
                run_row("a", "csv", "success", T0, T0, records_processed=4, duration_ms=100),
                run_row("b", "csv", "success", T0, T0, records_processed=3, duration_ms=250),
            ],
        )
        conn.execute(
            sa.insert(schema.price_history),
            _history(
                "a",
                [("BTC", 100.0, 0), ("BTC", 110.0, 1), ("ETH", 10.0, 1), ("OLD", 5.0, 1)],
            )
            + _history("b", [("BTC", 99.0, 2), ("ETH", 15.0, 2), ("NEW", 1.0, 2)]),
        )
    response = client.get("/runs/compare", params={"a": "a", "b": "b"})
    assert response.status_code == 200, response.text
    body = RunComparison.model_validate(response.json())
    assert (body.a.run_id, body.b.run_id) == ("a", "b")
    assert body.records_processed.model_dump() == {"a": 4, "b": 3, "delta": -1}
    assert body.duration_ms.model_dump() == {"a": 100, "b": 250, "delta": 150}
    assert [(i.source, i.source_asset_id) for i in body.assets_added.items] == [("csv", "NEW")]
    assert body.assets_added.count == 1
    assert [i.source_asset_id for i in body.assets_removed.items] == ["OLD"]
    moves = [(m.source_asset_id, m.price_a, m.price_b) for m in body.largest_price_moves]
    # a's price is its newest observation (110, not 100).
    assert moves == [("ETH", 10.0, 15.0), ("BTC", 110.0, 99.0)]
    assert body.largest_price_moves[0].change_pct == pytest.approx(50.0)
    assert body.largest_price_moves[1].change_pct == pytest.approx(-10.0)
    assert body.largest_price_moves[0].asset_id == "eth"

    assert_problem(client.get("/runs/compare", params={"a": "a", "b": "zz"}), 404, mentions="zz")
    assert_problem(client.get("/runs/compare", params={"a": "a"}), 422, mentions="`b`")


def test_compare_two_real_runs(
    client: TestClient, settings: Settings, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    again = run_source(engine, settings, "csv", trigger="test")
    response = client.get("/runs/compare", params={"a": loaded["csv"].run_id, "b": again.run_id})
    assert response.status_code == 200, response.text
    body = RunComparison.model_validate(response.json())
    # A re-run of an unchanged file observes nothing new: it adds nothing, "removes" everything.
    assert body.assets_added.count == 0
    assert body.assets_removed.count > 0
    assert body.largest_price_moves == []
    assert body.records_loaded.a == loaded["csv"].records_loaded
    assert body.records_unchanged.b == again.records_unchanged


def test_compare_refuses_runs_of_different_sources(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    a, b = loaded["csv"].run_id, loaded["csv_weird"].run_id
    problem = assert_problem(
        client.get("/runs/compare", params={"a": a, "b": b}), 400, mentions="different sources"
    )
    assert "'csv'" in problem["detail"]
    assert "'csv_weird'" in problem["detail"]
    assert problem["sources"] == {"a": "csv", "b": "csv_weird"}
    # Either way round.
    swapped = assert_problem(client.get("/runs/compare", params={"a": b, "b": a}), 400)
    assert swapped["sources"] == {"a": "csv_weird", "b": "csv"}
