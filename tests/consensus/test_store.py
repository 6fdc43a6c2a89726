"""Reference prices in the database, on SQLite and PostgreSQL: rewritten only when they change,
read back for quote conversion, re-pointed on a merge, and refreshed after ETL runs."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.consensus.inputs import time_groups
from kasparro.consensus.method import Parameters
from kasparro.consensus.refresh import refresh_after_runs
from kasparro.consensus.store import compute, latest_reference_price, repoint, write
from kasparro.db import schema
from kasparro.db.engine import write_transaction
from kasparro.etl.runner import run_source, start_runs
from tests.api.conftest import wait_for_runs
from tests.helpers import settings_for

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PARAMS = Parameters()


def _asset(conn: sa.Connection, asset_id: str) -> None:
    conn.execute(
        sa.insert(schema.assets).values(
            asset_id=asset_id, symbol="X", name=asset_id, created_at=T0, created_run_id="r"
        )
    )


def _link(conn: sa.Connection, asset_id: str, source: str, price: float, when: datetime) -> None:
    values = {
        "price_usd": price,
        "market_cap_usd": None,
        "volume_24h_usd": 1e6,
        "observed_at": when,
        "ingested_at": when,
        "run_id": f"run-{source}",
        "raw_id": "f" * 64,
    }
    conn.execute(
        sa.insert(schema.asset_sources).values(
            source=source,
            source_asset_id=f"{source}-{asset_id}",
            asset_id=asset_id,
            symbol="X",
            name=asset_id,
            match_method="new",
            match_score=1.0,
            **values,
        )
    )


def _row(asset_id: str, as_of: datetime, price: float | None) -> dict[str, object]:
    return {
        "asset_id": asset_id,
        "as_of": as_of,
        "status": "ok" if price is not None else "disputed",
        "price_usd": price,
        "dispersion_bps": None,
        "sources_used": 1 if price is not None else 0,
        "sources_total": 1,
        "single_source": price is not None,
        "constituents": [],
        "computed_at": as_of,
    }


def test_a_row_is_rewritten_only_when_its_content_changes(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        _asset(conn, "alpha")
        for source, price in (("a", 10.0), ("b", 10.01), ("c", 9.99)):
            _link(conn, "alpha", source, price, T0)
    assert compute(engine, PARAMS, now=T0).written == 1
    assert compute(engine, PARAMS, now=T0 + timedelta(hours=1)).written == 0
    # A source corrects its observation at the same time: the same as-of, a new value.
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(schema.asset_sources)
            .where(schema.asset_sources.c.source == "a")
            .values(price_usd=10.05)
        )
    summary = compute(engine, PARAMS, asset_ids=["alpha", "unknown"], now=T0)
    assert (summary.assets, summary.written) == (1, 1)
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.reference_prices)).one()
    assert (row.as_of, row.price_usd, row.sources_used) == (T0, 10.01, 3)
    assert sorted(c["price_usd"] for c in row.constituents) == [9.99, 10.01, 10.05]


def test_latest_reference_price_for_quote_conversion(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        _asset(conn, "tether")
        write(conn, [_row("tether", T0, 0.9991), _row("tether", T0 + timedelta(hours=1), None)])
    with engine.connect() as conn:
        hour = timedelta(hours=1)
        assert latest_reference_price(conn, "tether", T0 + timedelta(minutes=5), hour) == 0.9991
        assert latest_reference_price(conn, "tether", T0 - timedelta(seconds=1), hour) is None
        assert latest_reference_price(conn, "tether", T0 + 2 * hour, 3 * hour) is None  # disputed
        too_old = T0 + timedelta(minutes=59)
        assert latest_reference_price(conn, "tether", too_old, timedelta(minutes=30)) is None
        assert latest_reference_price(conn, "nobody", T0, hour) is None


def test_repoint_moves_a_merged_assets_series_and_keeps_the_targets(engine: Engine) -> None:
    later = T0 + timedelta(minutes=10)
    with write_transaction(engine) as conn:
        _asset(conn, "old")
        _asset(conn, "new")
        write(conn, [_row("old", T0, 1.0), _row("old", later, 2.0), _row("new", later, 3.0)])
        assert repoint(conn, "old", "new") == 1
        conn.execute(sa.delete(schema.assets).where(schema.assets.c.asset_id == "old"))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.reference_prices.c.asset_id, schema.reference_prices.c.price_usd
            ).order_by(schema.reference_prices.c.as_of)
        ).all()
    assert [tuple(r) for r in rows] == [("new", 1.0), ("new", 3.0)]


def test_an_asset_cannot_be_deleted_while_it_has_a_series(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        _asset(conn, "kept")
        write(conn, [_row("kept", T0, 1.0)])
    with pytest.raises(sa.exc.IntegrityError), write_transaction(engine) as conn:
        conn.execute(sa.delete(schema.assets).where(schema.assets.c.asset_id == "kept"))


def test_assets_far_apart_in_time_are_read_in_separate_ranges() -> None:
    lookback = timedelta(minutes=45)
    as_of = {
        "a": T0,
        "b": T0 + timedelta(minutes=30),
        "old": T0 - timedelta(days=200),
        "c": T0 + timedelta(minutes=50),
    }
    groups = [(sorted(ids), since, until) for ids, since, until in time_groups(as_of, lookback)]
    assert groups == [
        (["old"], as_of["old"] - lookback, as_of["old"]),
        (["a", "b"], T0 - lookback, as_of["b"]),
        (["c"], as_of["c"] - lookback, as_of["c"]),
    ]


def test_refresh_after_runs_computes_the_assets_those_runs_changed(
    database_url: str, engine: Engine
) -> None:
    settings = settings_for(database_url, csv_enabled=True, csv_weird_enabled=True)
    run = run_source(engine, settings, "csv", trigger="test")
    refresh_after_runs(engine, settings, [run.run_id])
    with engine.connect() as conn:
        computed = set(conn.scalars(sa.select(schema.reference_prices.c.asset_id)))
        csv_assets = set(
            conn.scalars(
                sa.select(schema.asset_sources.c.asset_id).where(
                    schema.asset_sources.c.source == "csv"
                )
            )
        )
    assert computed == csv_assets and computed
    refresh_after_runs(engine, settings, ["no-such-run"])  # nothing changed: nothing to do


def test_runs_started_in_the_background_refresh_reference_prices(
    database_url: str, engine: Engine
) -> None:
    """The scheduler's and POST /etl/run's path: start_runs computes after its runs end."""
    settings = settings_for(database_url, csv_enabled=True, csv_weird_enabled=True)
    started = start_runs(engine, settings, ["csv", "csv_weird"], trigger="test")
    wait_for_runs(engine, [r.run_id for r in started])
    with engine.connect() as conn:
        linked = set(conn.scalars(sa.select(schema.asset_sources.c.asset_id).distinct()))
    deadline = time.monotonic() + 60
    while True:  # the refresh follows the runs' end in the same thread
        with engine.connect() as conn:
            computed = set(conn.scalars(sa.select(schema.reference_prices.c.asset_id)))
        if computed == linked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert computed == linked
    with engine.connect() as conn:
        btc = conn.execute(
            sa.select(schema.reference_prices)
            .join(schema.assets, schema.assets.c.asset_id == schema.reference_prices.c.asset_id)
            .where(schema.assets.c.symbol == "BTC")
        ).one()
    # Both files price Bitcoin on 2026-05-13 (80,586.96239 and 80,586.96): the midpoint.
    assert (btc.status, btc.sources_used, btc.single_source) == ("ok", 2, False)
    assert btc.price_usd == pytest.approx((80_586.96239 + 80_586.96) / 2)
