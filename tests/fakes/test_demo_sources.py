"""`make demo` switches every installed source on and points each API source at its fake: every
one of them loads, the exchanges' quotes converted on the very first start (their records wait
for the reference prices of USDT, USDC, EUR and BTC, then are replayed)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from kasparro.db import schema
from kasparro.db.engine import create_db_engine
from kasparro.demo import demo_settings, load_every_source
from kasparro.fakes.server import FakeUpstreams
from kasparro.sources.registry import enabled_sources, source_names
from tests.helpers import settings_for


def test_the_demo_loads_every_source_against_the_fakes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    with FakeUpstreams(coins=60) as fake:
        settings = demo_settings(settings_for(url), fake)
        assert enabled_sources(settings) == list(source_names())
        statuses = load_every_source(settings)
    assert set(statuses) == set(source_names())
    assert all(status in ("success", "degraded") for status in statuses.values()), statuses
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            loaded = dict(
                conn.execute(
                    sa.select(schema.asset_sources.c.source, sa.func.count()).group_by(
                        schema.asset_sources.c.source
                    )
                ).all()
            )
            bitcoin_members = set(
                conn.execute(
                    sa.select(schema.asset_sources.c.source).where(
                        schema.asset_sources.c.asset_id == "bitcoin"
                    )
                ).scalars()
            )
            waiting = conn.scalar(
                sa.select(sa.func.count())
                .select_from(schema.quarantine)
                .where(schema.quarantine.c.reason_code == "no_quote_price")
            )
    finally:
        engine.dispose()
    assert set(loaded) == set(source_names()), loaded
    assert all(n > 0 for n in loaded.values()), loaded
    assert waiting == 0  # every quote converted once the reference prices existed
    # Each source's shipped crosswalk rows (`Source.known_assets`) join an exchange's bare code to
    # the coin, whichever source loaded first.
    api_sources = {"coingecko", "coinpaprika", "coincap", "coinmarketcap", "binance", "kraken"}
    assert api_sources <= bitcoin_members, bitcoin_members
