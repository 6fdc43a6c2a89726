"""Run changes: the comparison a run stores when it finishes equals the one computed from the
history rows; /runs/compare and the console read it for a run and the one before it, store any
other pair of finished runs on its first request (never one with a run still running), and the
page says which it shows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.queries import runs as runs_queries
from kasparro.db import schema
from kasparro.etl import run_changes
from kasparro.etl.runner import RunResult, run_source
from tests.api.conftest import run_row

T0 = datetime(2026, 11, 1, tzinfo=UTC)
RUNS = ("run-a", "run-b", "run-c")


def _seed(engine: Engine, seed: int) -> None:
    """Three runs of coingecko, an hour apart, each observing a random part of 400 assets,
    some several times, at random prices (zero included: no move is computed from it)."""
    rng = random.Random(seed)
    rows = {}
    for n in range(400):
        for number, run_id in enumerate(RUNS):
            if rng.random() < 0.4:
                continue
            for k in range(rng.randint(1, 2)):
                observed = T0 + timedelta(hours=number, minutes=k + rng.randint(0, 50))
                rows[(f"coin-{n}", observed)] = {
                    "source": "coingecko",
                    "source_asset_id": f"coin-{n}",
                    "observed_at": observed,
                    "asset_id": f"asset-{n}",
                    "price_usd": rng.choice([0.0, 1.0, rng.uniform(0.01, 100)]),
                    "ingested_at": observed,
                    "run_id": run_id,
                    "raw_id": "r" * 64,
                }
    runs = [
        run_row(run_id, "coingecko", "success", T0 + timedelta(hours=h), T0 + timedelta(hours=h))
        for h, run_id in enumerate(RUNS)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.etl_runs), runs)
        conn.execute(sa.insert(schema.price_history), list(rows.values()))


def test_the_stored_comparison_equals_the_computed_one(engine: Engine) -> None:
    _seed(engine, 15)
    assert not run_changes.record_run_changes(engine, "run-a")  # nothing before it
    assert run_changes.record_run_changes(engine, "run-b")
    assert run_changes.record_run_changes(engine, "run-c")
    with engine.connect() as conn:
        assert run_changes.previous_run(conn, "run-c") == "run-b"
        computed = run_changes.observed_changes(
            conn, "coingecko", "run-b", "run-c", listed=100, moves=10
        )
        stored = run_changes.stored_changes(conn, "run-b", "run-c", listed=100, moves=10)
        assert stored is not None
        assert stored.changes == computed
        assert computed.added_count > 0 and computed.removed_count > 0 and computed.moves
        # Fewer asked for: the first of them, as computed.
        fewer = run_changes.stored_changes(conn, "run-b", "run-c", listed=5, moves=3)
        assert fewer is not None
        assert fewer.changes.added == computed.added[:5]
        assert fewer.changes.moves == computed.moves[:3]
        # No summary for a pair that is not (previous, run), nor for more than it keeps.
        assert run_changes.stored_changes(conn, "run-a", "run-c", listed=100, moves=10) is None
        assert run_changes.stored_changes(conn, "run-c", "run-b", listed=100, moves=10) is None
        assert run_changes.stored_changes(conn, "run-b", "run-c", listed=101, moves=10) is None
        # The API's function reads the summary, or computes a pair it does not cover.
        assert (
            runs_queries.compare_observations(
                conn, "coingecko", "run-b", "run-c", listed=100, moves=10
            )
            == computed
        )
        apart = runs_queries.compare_observations(
            conn, "coingecko", "run-a", "run-c", listed=100, moves=10
        )
        assert apart == run_changes.observed_changes(
            conn, "coingecko", "run-a", "run-c", listed=100, moves=10
        )
    # A merge moves the top mover's member and its history to another asset: the stored move
    # follows it, as the history rows do.
    mover = computed.moves[0].source_asset_id
    _merge(engine, mover, "asset-merged")
    with engine.connect() as conn:
        stored = run_changes.stored_changes(conn, "run-b", "run-c", listed=100, moves=10)
        now = run_changes.observed_changes(
            conn, "coingecko", "run-b", "run-c", listed=100, moves=10
        )
    assert stored is not None and stored.changes == now
    assert now.moves[0].asset_id == "asset-merged"


def _fresh(engine: Engine, run_a: str, run_b: str) -> run_changes.ObservedChanges:
    with engine.connect() as conn:
        return run_changes.observed_changes(conn, "coingecko", run_a, run_b, listed=100, moves=10)


def _compare(engine: Engine, run_a: str, run_b: str, **asked: int) -> runs_queries.Comparison:
    limits = {"listed": 100, "moves": 10, **asked}
    with engine.connect() as conn:
        return runs_queries.comparison(conn, "coingecko", run_a, run_b, **limits)


def _stored_pairs(engine: Engine) -> list[tuple[str, str]]:
    table = schema.run_comparisons
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(table.c.run_a_id, table.c.run_b_id))]


def test_a_pair_not_consecutive_is_stored_by_its_first_request(engine: Engine) -> None:
    _seed(engine, 16)
    fresh = _fresh(engine, "run-a", "run-c")
    assert fresh.added_count > 0 and fresh.removed_count > 0 and len(fresh.moves) == 10
    assert _stored_pairs(engine) == []
    first = _compare(engine, "run-a", "run-c")
    assert first.origin == "first_request" and first.computed_at is not None
    assert first.changes == fresh
    assert _stored_pairs(engine) == [("run-a", "run-c")]
    # Read back, not computed again: run a's rows gone, the stored comparison still answers.
    with engine.begin() as conn:
        conn.execute(
            sa.delete(schema.price_history).where(schema.price_history.c.run_id == "run-a")
        )
    again = _compare(engine, "run-a", "run-c")
    assert (again.origin, again.computed_at, again.changes) == (
        "first_request",
        first.computed_at,
        fresh,
    )
    assert _fresh(engine, "run-a", "run-c") != fresh
    # Fewer asked for: the first of them, as computed; more than it keeps: computed, not read.
    fewer = _compare(engine, "run-a", "run-c", listed=5, moves=3)
    assert fewer.changes.added == fresh.added[:5] and fewer.changes.moves == fresh.moves[:3]
    assert _compare(engine, "run-a", "run-c", listed=101).origin == "computed"
    # A merge since moves a mover's member and history to another asset: the move follows it.
    _merge(engine, fresh.moves[0].source_asset_id, "asset-merged")
    merged = _compare(engine, "run-a", "run-c").changes.moves
    assert merged[0].asset_id == "asset-merged"
    assert merged[1:] == fresh.moves[1:]


def test_a_pair_with_a_run_still_running_is_not_stored(engine: Engine) -> None:
    _seed(engine, 17)
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.etl_runs)
            .where(schema.etl_runs.c.run_id == "run-c")
            .values(status="running", finished_at=None)
        )
    for _ in range(2):
        running = _compare(engine, "run-a", "run-c")
        assert (running.origin, running.computed_at) == ("computed", None)
        assert running.changes == _fresh(engine, "run-a", "run-c")
    assert _stored_pairs(engine) == []
    # More rows while it runs: the next request sees them.
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.price_history)
            .where(schema.price_history.c.run_id == "run-b")
            .values(run_id="run-c")
        )
    assert _compare(engine, "run-a", "run-c").changes == _fresh(engine, "run-a", "run-c")
    # Once it has finished, the pair is stored by the next request.
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.etl_runs)
            .where(schema.etl_runs.c.run_id == "run-c")
            .values(status="success", finished_at=T0 + timedelta(hours=3))
        )
    assert _compare(engine, "run-a", "run-c").origin == "first_request"
    assert _stored_pairs(engine) == [("run-a", "run-c")]


def _merge(engine: Engine, source_asset_id: str, asset_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.assets).values(
                asset_id=asset_id, symbol="M", name="Merged", created_at=T0, created_run_id="t"
            )
        )
        conn.execute(
            sa.insert(schema.asset_sources).values(
                source="coingecko",
                source_asset_id=source_asset_id,
                asset_id=asset_id,
                name="Merged",
                price_usd=1.0,
                observed_at=T0,
                ingested_at=T0,
                run_id="run-c",
                raw_id="r" * 64,
                match_method="curated",
                match_score=1.0,
            )
        )
        conn.execute(
            sa.update(schema.price_history)
            .where(schema.price_history.c.source_asset_id == source_asset_id)
            .values(asset_id=asset_id)
        )


def test_a_finished_run_stores_its_comparison_and_the_pages_say_where_it_comes_from(
    client: TestClient, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    first = loaded["csv_weird"].run_id
    second = run_source(engine, settings, "csv_weird", trigger="test").run_id
    third = run_source(engine, settings, "csv_weird", trigger="test").run_id
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(schema.run_changes.c.run_id, schema.run_changes.c.previous_run_id).where(
                schema.run_changes.c.source == "csv_weird"
            )
        ).all()
    assert sorted(stored) == sorted([(second, first), (third, second)])
    # The run page offers the run before it; that comparison is the stored one.
    assert f"compare?a={second}&amp;b={third}" in client.get(f"/ui/runs/{third}").text
    page = client.get(f"/ui/runs/compare?a={second}&b={third}").text
    assert "Recorded when B finished" in page
    with engine.connect() as conn:
        assert runs_queries.stored_comparison(conn, first, third, listed=100, moves=10) is None
    apart = client.get(f"/ui/runs/compare?a={first}&b={third}").text
    assert "A is not the run right before B. Computed on first request at" in apart
    with engine.connect() as conn:
        kept = runs_queries.stored_comparison(conn, first, third, listed=100, moves=10)
    assert kept is not None
    assert f"Computed on first request at {kept.computed_at:%Y-%m-%d %H:%M:%S} UTC" in apart
    assert (
        f"{kept.computed_at:%H:%M:%S}" in client.get(f"/ui/runs/compare?a={first}&b={third}").text
    )
    # A run still running: computed on each request, and the page says why it is not kept.
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.etl_runs).values(
                run_row("run-running", "csv_weird", "running", datetime.now(UTC))
            )
        )
    running = client.get(f"/ui/runs/compare?a={third}&b=run-running").text
    assert "not kept: a run is still running" in running
    with engine.connect() as conn:
        assert runs_queries.stored_comparison(conn, third, "run-running", listed=1, moves=1) is None
    # The JSON twin agrees with the page's source of figures either way.
    for a, b in ((second, third), (first, third)):
        body = client.get(f"/runs/compare?a={a}&b={b}").json()
        with engine.connect() as conn:
            expected = run_changes.observed_changes(conn, "csv_weird", a, b, listed=100, moves=10)
        assert body["assets_added"]["count"] == expected.added_count
        assert body["assets_removed"]["count"] == expected.removed_count
