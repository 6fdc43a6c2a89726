"""Drift and anomalies end to end: the fakes drift, the runs notice, the database keeps it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import run_source
from kasparro.fakes.faults import Fault
from kasparro.fakes.server import FakeUpstreams
from tests.helpers import count, settings_for

PRICE = {"coingecko": "current_price", "coinpaprika": "quotes.USD.price"}
RENAMED = {"coingecko": "price", "coinpaprika": "quotes.USD.last_price"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=60) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _clean_faults(fake: FakeUpstreams) -> Iterator[None]:
    fake.state.clear_faults()
    yield
    fake.state.clear_faults()


def _settings(database_url: str, fake: FakeUpstreams, **overrides: object) -> Settings:
    return settings_for(
        database_url,
        coingecko_enabled=True,
        coinpaprika_enabled=True,
        coingecko_base_url=fake.coingecko_url,
        coingecko_per_page=100,
        coinpaprika_base_url=fake.coinpaprika_url,
        **overrides,
    )


def _drift(engine: Engine, run_id: str) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.drift_events.c.kind,
                schema.drift_events.c.field,
                schema.drift_events.c.action,
            ).where(schema.drift_events.c.run_id == run_id)
        )
        return sorted(tuple(r) for r in rows)


@pytest.mark.parametrize("source", ["coingecko", "coinpaprika"])
def test_a_renamed_price_is_followed_and_logged(
    database_url: str, engine: Engine, fake: FakeUpstreams, source: str
) -> None:
    fake.state.add_faults([Fault("drift", vendor=source, rename={PRICE[source]: RENAMED[source]})])
    result = run_source(engine, _settings(database_url, fake), source, trigger="test")
    assert result.status == "success", result.error
    assert _drift(engine, result.run_id) == [("rename", PRICE[source], "applied")]
    assert result.records_loaded > 0
    with engine.connect() as conn:
        stored = conn.execute(sa.select(schema.raw_payloads.c.payload).limit(1)).scalar_one()
    # The raw payload is kept as received; only normalization reads through the rename.
    assert RENAMED[source].split(".")[-1] in str(stored)


@pytest.mark.parametrize("source", ["coingecko", "coinpaprika"])
def test_a_missing_price_quarantines_and_degrades_the_run(
    database_url: str, engine: Engine, fake: FakeUpstreams, source: str
) -> None:
    fake.state.add_faults([Fault("drift", vendor=source, drop=[PRICE[source]])])
    result = run_source(engine, _settings(database_url, fake), source, trigger="test")
    assert result.status == "degraded"
    assert ("missing", PRICE[source], "quarantined") in _drift(engine, result.run_id)
    assert result.records_loaded == 0  # never a price defaulted or guessed
    assert result.records_quarantined == result.records_processed
    assert count(engine, schema.price_history) == 0


@pytest.mark.parametrize("source", ["coingecko", "coinpaprika"])
def test_a_price_of_another_type_quarantines_and_degrades_the_run(
    database_url: str, engine: Engine, fake: FakeUpstreams, source: str
) -> None:
    fake.state.add_faults([Fault("drift", vendor=source, retype={PRICE[source]: "object"})])
    result = run_source(engine, _settings(database_url, fake), source, trigger="test")
    assert result.status == "degraded"
    assert ("type_change", PRICE[source], "quarantined") in _drift(engine, result.run_id)
    assert count(engine, schema.price_history) == 0


def _anomalies(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.anomalies.c.kind, schema.anomalies.c.source, schema.anomalies.c.asset_id
            )
        )
        return sorted(tuple(r) for r in rows)


def test_a_drop_in_record_count_is_flagged(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n")
    # Durations on a shared machine are noise here: only the count drop is under test.
    settings = settings_for(
        database_url, csv_enabled=True, csv_path=path, anomaly_duration_factor=1000
    )
    for day in range(1, 5):  # four runs of 20 new rows each
        with path.open("a") as handle:
            for n in range(20):
                handle.write(f"C{n},Coin {n},{n + 1},{(n + 1) * 1e6},1000,2026-05-0{day}\n")
        assert run_source(engine, settings, "csv", trigger="test").records_processed == 20
    assert _anomalies(engine) == []
    with path.open("a") as handle:
        handle.write("C1,Coin 1,2,2000000,1000,2026-05-09\n")
    assert run_source(engine, settings, "csv", trigger="test").status == "success"
    assert _anomalies(engine) == [("record_count_drop", "csv", None)]


def test_a_source_far_from_the_others_price_is_flagged(
    database_url: str, engine: Engine, fake: FakeUpstreams, tmp_path: Path
) -> None:
    settings = _settings(database_url, fake, csv_enabled=True)
    for source in ("coingecko", "coinpaprika"):
        assert run_source(engine, settings, source, trigger="test").status == "success"
    bitcoin = next(c for c in fake.universe.coingecko_items() if c["id"] == "bitcoin")
    off = bitcoin["current_price"] * 1.3
    path = tmp_path / "off.csv"
    path.write_text(
        "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"
        f"BTC,Bitcoin,{off},{bitcoin['market_cap']},1,{bitcoin['last_updated']}\n"
    )
    csv_settings = settings.model_copy(update={"csv_path": path})
    assert run_source(engine, csv_settings, "csv", trigger="test").status == "success"
    with engine.connect() as conn:
        btc = conn.scalar(
            sa.select(schema.asset_sources.c.asset_id).where(
                schema.asset_sources.c.source_asset_id == "bitcoin"
            )
        )
    assert ("price_outlier", "csv", btc) in _anomalies(engine)
