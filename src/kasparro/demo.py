"""`make demo`: both fake upstreams on loopback, then the service fed by them.

All four sources load at start-up (CoinGecko and CoinPaprika from the fakes, the two CSV
samples from disk) into their own SQLite file, so the demo never touches `make run`'s data.
"""

from __future__ import annotations

from kasparro.config import Settings, get_settings
from kasparro.fakes.server import FakeUpstreams
from kasparro.logging import configure_logging, get_logger

log = get_logger(__name__)
DEMO_DATABASE_URL = "sqlite:///data/demo.db"


def demo_settings(base: Settings, fake: FakeUpstreams) -> Settings:
    return base.model_copy(
        update={
            "database_url": base.database_url or DEMO_DATABASE_URL,
            "coingecko_enabled": True,
            "coinpaprika_enabled": True,
            "csv_enabled": True,
            "csv_weird_enabled": True,
            "coingecko_base_url": fake.coingecko_url,
            "coingecko_api_key": None,
            "coingecko_rate_limit_per_minute": 6000,  # the fake's public plan has no limit
            "coinpaprika_base_url": fake.coinpaprika_url,
            "coinpaprika_api_key": None,
            "etl_run_on_start": True,
        }
    )


def run_demo(coins: int = 300, port: int | None = None) -> None:
    from kasparro.serve import serve

    base = get_settings()
    configure_logging(base.log_level, base.log_format)
    with FakeUpstreams(coins=coins) as fake:
        settings = demo_settings(base, fake)
        log.info(
            "demo_upstreams",
            coingecko=fake.coingecko_url,
            coinpaprika=fake.coinpaprika_url,
            database=settings.resolved_database_url,
        )
        serve(settings, settings.api_host, port or settings.api_port)
