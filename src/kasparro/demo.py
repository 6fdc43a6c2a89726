"""`make demo`: the fake upstreams on loopback, then the service fed by them.

Every installed source is switched on (the API sources read their fakes, the CSV samples come
from disk) into a SQLite file of its own, so the demo never touches `make run`'s data.

Before serving, the demo loads every source once, in this order: each source runs; the reference
prices are computed; then the records that waited for a quote price (an exchange pair in USDT,
EUR or BTC, quarantined `no_quote_price` because no reference price of its quote existed yet on a
first run) are replayed, now converted; and the reference prices are computed again. So the
first page already shows every source. The schedule then runs as usual.
"""

from __future__ import annotations

from kasparro.config import Settings, get_settings
from kasparro.fakes.server import FakeUpstreams
from kasparro.logging import configure_logging, get_logger
from kasparro.sources.registry import source_classes

log = get_logger(__name__)
DEMO_DATABASE_URL = "sqlite:///data/demo.db"


def demo_settings(base: Settings, fake: FakeUpstreams) -> Settings:
    every_source = {f"{s.env_prefix.lower()}enabled": True for s in source_classes().values()}
    return base.model_copy(
        update={
            "database_url": base.database_url or DEMO_DATABASE_URL,
            **every_source,
            **fake.settings(),
            "etl_run_on_start": True,
        }
    )


def load_every_source(settings: Settings) -> dict[str, str]:
    """One run of every enabled source, the reference prices, then the records that waited for
    a quote's reference price; returns each run's status by source."""
    from kasparro.consensus.refresh import compute_now
    from kasparro.db.engine import create_db_engine
    from kasparro.db.migrate import upgrade
    from kasparro.etl.replay import Selection, replay_source, sources_to_replay
    from kasparro.etl.runner import enabled_sources, run_source
    from kasparro.load.quotes import NO_QUOTE_PRICE

    upgrade(settings.resolved_database_url)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        statuses: dict[str, str] = {}
        for name in enabled_sources(settings):
            statuses[name] = run_source(engine, settings, name, trigger="startup").status
            # As after every scheduled cycle: the next source's quotes convert at these prices
            # (the shipped CSV samples are dated months away from the API fakes' clock).
            compute_now(engine, settings)
        waiting = Selection(reason_code=NO_QUOTE_PRICE)
        for name in sources_to_replay(engine, waiting):
            statuses[name] = replay_source(engine, settings, name, waiting).status
        compute_now(engine, settings)
        return statuses
    finally:
        engine.dispose()


def run_demo(coins: int = 300, port: int | None = None) -> None:
    from kasparro.serve import serve

    base = get_settings()
    configure_logging(base.log_level, base.log_format)
    with FakeUpstreams(coins=coins) as fake:
        fake.universe.follow_wall_clock()  # fresh data, and prices that move while it runs
        settings = demo_settings(base, fake)
        log.info("demo_upstreams", **fake.urls(), database=settings.resolved_database_url)
        log.info("demo_loaded", **load_every_source(settings))
        # Loaded already: the schedule takes it from here.
        serve(
            settings.model_copy(update={"etl_run_on_start": False}),
            settings.api_host,
            port or settings.api_port,
        )
