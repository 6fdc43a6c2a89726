"""The resolver at real scale: two real vendor listings through the real ETL, scored on labels.

A universe directory holds `coingecko_list.json` (`/coins/list` entries), `coinpaprika_list.json`
(`/v1/coins` entries) and `pairs.csv` (true `cg_id,cp_id` pairs with a `confidence`). Served:
every CoinGecko coin, the active CoinPaprika coins and any coin named in `pairs.csv`. The
listings carry no market data, so it is synthetic (`NoiseModel`): a true pair agrees as real
vendors do, every other coin draws its own numbers. Both fakes serve the items over HTTP and
`run_source` loads them, in each order, into a scratch database; then `asset_sources` is read.

A predicted link is a canonical asset holding a CoinGecko and a CoinPaprika asset. It is
correct when `pairs.csv` has it, wrong when either id has another partner there (counted under
the least confident of those labels), and unlabeled when neither id is in `pairs.csv`.
"""

from __future__ import annotations

import csv
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.identity.universe_score import (
    LEVELS,
    SOURCES,
    Entry,
    EvalUniverse,
    Loaded,
    score,
)

if TYPE_CHECKING:  # the fakes (uvicorn, starlette) are imported only when a run needs them
    from kasparro.fakes.listing import ListedCoin, Listing

ORDERS = (SOURCES, SOURCES[::-1])
DEFAULT_SEED = 20260513


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """How the synthetic market numbers are drawn (all seeded)."""

    price_sigma: float = 0.02  # a true pair: ln(CoinPaprika price / CoinGecko price) ~ N(0, sigma)
    cap_spread: float = 0.2  # a true pair: caps within a factor 1 + spread (log-uniform)
    cap_mismatch_share: float = 0.1  # ...except this share, caps apart by a factor in:
    cap_mismatch_low: float = 1.5  # (vendors count circulating supply differently)
    cap_mismatch_high: float = 5.0
    price_low: float = 1e-8  # any coin's price, log-uniform in [low, high] USD
    price_high: float = 1e5
    cap_low: float = 1e4  # any coin's market cap, log-uniform in [low, high] USD
    cap_high: float = 1e11


def read_universe(directory: Path) -> EvalUniverse:
    def entries(name: str) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = orjson.loads((directory / name).read_bytes())
        return loaded

    with (directory / "pairs.csv").open(newline="", encoding="utf-8") as handle:
        pairs = {(r["cg_id"], r["cp_id"]): r["confidence"] for r in csv.DictReader(handle)}
    paired_cp = {cp for _, cp in pairs}
    return EvalUniverse(
        coingecko={e["id"]: _entry(e) for e in entries("coingecko_list.json")},
        coinpaprika={
            e["id"]: _entry(e)
            for e in entries("coinpaprika_list.json")
            if e.get("is_active") is True or e["id"] in paired_cp
        },
        pairs=pairs,
    )


def _entry(item: Mapping[str, Any]) -> Entry:
    return Entry(str(item["id"]), str(item.get("symbol") or ""), str(item.get("name") or ""))


def priced(
    universe: EvalUniverse, noise: NoiseModel, seed: int
) -> tuple[list[ListedCoin], list[ListedCoin]]:
    """Both vendors' coins with synthetic prices and caps (one random stream per coin or pair,
    so a coin's numbers do not depend on which other coins are served)."""
    from kasparro.fakes.listing import ListedCoin

    def draw(rng: random.Random, low: float, high: float) -> float:
        return math.exp(rng.uniform(math.log(low), math.log(high)))

    def own(entry: Entry, side: str) -> ListedCoin:
        rng = random.Random(f"{seed}:{side}:{entry.id}")
        price = draw(rng, noise.price_low, noise.price_high)
        cap = draw(rng, noise.cap_low, noise.cap_high)
        return ListedCoin(entry.id, entry.symbol, entry.name, price, cap)

    by_cg = dict(universe.served_pairs().keys())  # cg id -> cp id
    cg_coins = [own(entry, "cg") for entry in universe.coingecko.values()]
    paired: dict[str, ListedCoin] = {}
    spread = math.log1p(noise.cap_spread)
    for cg in cg_coins:
        cp_id = by_cg.get(cg.id)
        if cp_id is None:
            continue
        rng = random.Random(f"{seed}:pair:{cg.id}:{cp_id}")
        price = cg.price * math.exp(rng.gauss(0, noise.price_sigma))
        factor = math.exp(rng.uniform(-spread, spread))
        if rng.random() < noise.cap_mismatch_share:
            factor = draw(rng, noise.cap_mismatch_low, noise.cap_mismatch_high)
            factor = factor if rng.random() < 0.5 else 1 / factor
        entry = universe.coinpaprika[cp_id]
        paired[cp_id] = ListedCoin(cp_id, entry.symbol, entry.name, price, cg.market_cap * factor)
    pp_coins = [paired.get(i) or own(e, "cp") for i, e in universe.coinpaprika.items()]
    return cg_coins, pp_coins


def settings_for(
    database_url: str, coingecko_url: str, coinpaprika_url: str, pages: int
) -> Settings:
    """Both API sources on the fakes, nothing read from `.env`, no limits that would slow it."""
    return Settings(
        _env_file=None,
        database_url=database_url,
        coingecko_enabled=True,
        coingecko_api_plan="public",
        coingecko_api_key=None,
        coingecko_base_url=coingecko_url,
        coingecko_per_page=250,
        coingecko_max_pages=pages,
        coingecko_rate_limit_per_minute=1e7,
        coinpaprika_enabled=True,
        coinpaprika_api_key=None,
        coinpaprika_base_url=coinpaprika_url,
        coinpaprika_rate_limit_per_second=1e5,
        csv_enabled=False,
        csv_weird_enabled=False,
        identity_crosswalk_path=None,  # the shipped crosswalk only, as a fresh install runs
        http_max_attempts=2,
        http_timeout_seconds=120,
        kasparro_faults="",
    )


def read_back(database_url: str) -> Loaded:
    from kasparro.db.engine import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            links = schema.asset_sources.c
            rows = conn.execute(
                sa.select(
                    links.source,
                    links.source_asset_id,
                    links.asset_id,
                    links.match_method,
                    links.match_score,
                )
            ).all()
            reviews = schema.identity_reviews.c
            quarantine = schema.quarantine.c
            return Loaded(
                owner={(r[0], r[1]): r[2] for r in rows},
                methods={(r[0], r[1]): (r[3], float(r[4])) for r in rows},
                reviews={
                    (r[0], r[1]): r[2]
                    for r in conn.execute(
                        sa.select(reviews.source, reviews.source_asset_id, reviews.reason)
                    )
                },
                quarantined={
                    (r[0], r[1] or ""): r[2]
                    for r in conn.execute(
                        sa.select(
                            quarantine.source, quarantine.source_asset_id, quarantine.reason_code
                        )
                    )
                },
            )
    finally:
        engine.dispose()


class ScratchNotEmpty(RuntimeError):
    pass


@contextmanager
def _databases(database_url: str | None) -> Iterator[list[str]]:
    """One migrated, empty database per order: SQLite files in a temporary directory, or the
    given database (refused unless empty), emptied between and after the orders."""
    from kasparro.db.engine import create_db_engine
    from kasparro.db.migrate import upgrade

    if database_url is None:
        with tempfile.TemporaryDirectory(prefix="kasparro-universe-") as tmp:
            urls = [f"sqlite:///{Path(tmp) / f'order{n}.db'}" for n in range(len(ORDERS))]
            yield urls
        return
    upgrade(database_url)
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as conn:
            used = conn.scalar(sa.select(sa.func.count()).select_from(schema.etl_runs))
        if used:
            raise ScratchNotEmpty(f"{engine.url!r} has ETL runs: give an empty scratch database")
        yield [database_url] * len(ORDERS)
    finally:
        engine.dispose()
        _empty(database_url)


def _empty(database_url: str) -> None:
    from kasparro.db.engine import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            for table in reversed(schema.metadata.sorted_tables):
                conn.execute(sa.delete(table))
    finally:
        engine.dispose()


def run_orders(
    universe: EvalUniverse,
    listing: Listing,
    database_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[tuple[str, Loaded, dict[str, float]]]:
    """Load the listing through the real ETL in each order; what each left, with timings."""
    from kasparro.db.engine import create_db_engine
    from kasparro.db.migrate import upgrade
    from kasparro.etl.runner import run_source
    from kasparro.fakes.listing import serve

    say = progress or (lambda _text: None)
    pages = len(listing.coingecko_items()) // 250 + 1
    results = []
    with serve(listing) as fake, _databases(database_url) as urls:
        for n, (order, url) in enumerate(zip(ORDERS, urls, strict=True)):
            timings: dict[str, float] = {}
            if n and database_url is not None:
                _empty(url)
            with _timed(timings, "migrate"):
                upgrade(url)
            settings = settings_for(url, fake.coingecko_url, fake.coinpaprika_url, pages)
            engine = create_db_engine(url)
            try:
                for source in order:
                    say(f"{' then '.join(order)}: loading {source}")
                    with _timed(timings, f"etl {source}"):
                        result = run_source(engine, settings, source, trigger="universe-eval")
                    if result.status == "failed":
                        raise RuntimeError(f"{source} run failed: {result.error}")
            finally:
                engine.dispose()
            with _timed(timings, "read back"):
                loaded = read_back(url)
            results.append((" then ".join(order), loaded, timings))
    return results


@contextmanager
def _timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        timings[phase] = round(time.monotonic() - started, 2)


def clock() -> datetime:
    """The `last_updated` of every served item: a few minutes ago, to the second."""
    return (datetime.now(UTC) - timedelta(minutes=3)).replace(microsecond=0)


def evaluate_universe(
    directory: Path,
    *,
    seed: int = DEFAULT_SEED,
    noise: NoiseModel = NoiseModel(),
    database_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole evaluation, as a JSON-ready report."""
    timings: dict[str, float] = {}
    with _timed(timings, "read listings"):
        universe = read_universe(directory)
    from kasparro.fakes.listing import Listing

    with _timed(timings, "build items"):
        cg_coins, pp_coins = priced(universe, noise, seed)
        listing = Listing(cg_coins, pp_coins, clock())
    with _timed(timings, "etl and read back"):
        runs = run_orders(universe, listing, database_url, progress)
    with _timed(timings, "score"):
        orders = [score(universe, order, loaded) for order, loaded, _ in runs]
    served = universe.served_pairs()
    return {
        "universe": str(directory),
        "seed": seed,
        "noise": asdict(noise),
        "database": "sqlite (temporary)" if database_url is None else "given",
        "served": {"coingecko": len(cg_coins), "coinpaprika": len(pp_coins)},
        "pairs": {
            "in_pairs_csv": len(universe.pairs),
            "served": {level: sum(1 for v in served.values() if v == level) for level in LEVELS},
        },
        "orders": [
            {**asdict(report), "timings": run_timings}
            for report, (_, _, run_timings) in zip(orders, runs, strict=True)
        ],
        "timings": timings,
    }
