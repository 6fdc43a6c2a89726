"""A deterministic universe of coins, as CoinGecko's `/coins/markets` and CoinPaprika's `/tickers`
would list them.

The first coins are real items (`data/`), the rest are generated from `seed`. Everything is a pure
function of `(coins, seed, snapshot)`: without `advance()`, repeated calls return equal items and
the apps serve byte-identical bodies, so an ETL rerun over the fakes is idempotent.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kasparro.fakes.generated import Generator
from kasparro.fakes.seeds import CG_PRICE_FIELDS, Coin, iso_ms, iso_s, scale, seed_coins

# The clock of snapshot 0; `advance()` moves it forward.
START = datetime(2026, 1, 13, 1, 15, tzinfo=UTC)


def _build(count: int, seed: int) -> list[Coin]:
    rng = random.Random(seed)
    seeds = seed_coins(random.Random(seed + 1))
    by_id = {c.coingecko["id"]: c.coingecko for c in seeds if c.coingecko is not None}
    generator = Generator(
        rng,
        eth_price=float(by_id["ethereum"]["current_price"]),
        btc_price=float(by_id["bitcoin"]["current_price"]),
    )
    generator.cg_ids.update(by_id)
    generator.pp_ids.update(c.coinpaprika["id"] for c in seeds if c.coinpaprika is not None)
    head = sum(1 for c in seeds if c.cap >= 1e8)
    generated = [generator.coin(rank) for rank in range(head + 1, head + 1 + max(0, count - head))]
    coins = sorted(seeds + generated, key=lambda c: -c.cap)[:count]
    # Ranks follow the order; CoinGecko leaves some null, CoinPaprika repeats some.
    cg_rank = pp_rank = 0
    for coin in coins:
        if coin.coingecko is not None:
            cg_rank += 1
            if coin.coingecko["market_cap_rank"] is not None:
                coin.coingecko["market_cap_rank"] = cg_rank
        if coin.coinpaprika is not None:
            pp_rank += 1
            repeat = pp_rank > 1 and pp_rank % 53 == 0
            coin.coinpaprika["rank"] = pp_rank - 1 if repeat else pp_rank
    return coins


class Universe:
    """`coins` coins ordered by market cap, at both vendors, moving with `advance()`."""

    def __init__(self, coins: int, seed: int = 7) -> None:
        if coins < 0:
            raise ValueError("coins must be >= 0")
        self.size = coins
        self.seed = seed
        self.snapshot = 0
        self.clock = START
        self._coins = _build(coins, seed)
        self._lock = threading.RLock()
        self._cg: tuple[int, list[dict[str, Any]]] | None = None
        self._pp: tuple[int, list[dict[str, Any]]] | None = None
        self._pp_bytes: dict[tuple[int, bool, int | None], bytes] = {}

    def start_now(self, earlier_by: int = 0) -> None:
        """Snapshot 0 is dated now (to the second), or `earlier_by` seconds before (room for
        `advance` calls that must not end in the future), instead of START: for the demo and
        the console, where observations dated months ago would make every source stale."""
        with self._lock:
            now = datetime.now(UTC).replace(microsecond=0)
            self.clock = now - timedelta(seconds=earlier_by)

    def follow_wall_clock(self, every: float = 60.0) -> None:
        """`start_now`, then move on with the wall clock every `every` seconds (a new snapshot,
        prices moving) in a daemon thread, so a long-running demo stays live. Tests keep the
        fixed clock and call `advance` themselves."""
        self.start_now()

        def tick() -> None:
            while True:
                time.sleep(every)
                behind = (datetime.now(UTC) - self.clock).total_seconds()
                self.advance(max(0, int(behind)))

        threading.Thread(target=tick, name="fake-wall-clock", daemon=True).start()

    def advance(self, seconds: int = 600) -> None:
        """Move the clock and the prices on: the next requests see a new snapshot."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self.snapshot += 1
            self.clock += timedelta(seconds=seconds)
            self._cg = self._pp = None
            self._pp_bytes.clear()

    def _moves(self) -> tuple[list[float], list[float]]:
        """Per-coin price and volume factors of the current snapshot (all 1 at snapshot 0)."""
        n = len(self._coins)
        if self.snapshot == 0:
            ones = [1.0] * n
            return ones, ones
        rng = random.Random(f"{self.seed}:{self.snapshot}")
        rand = rng.random
        prices = [0.98 + 0.02 * (rand() + rand()) for _ in range(n)]
        volumes = [0.9 + 0.1 * (rand() + rand()) for _ in range(n)]
        return prices, volumes

    def coingecko_items(self) -> list[dict[str, Any]]:
        """`/coins/markets?order=market_cap_desc` items of the current snapshot (do not mutate)."""
        with self._lock:
            if self._cg is not None and self._cg[0] == self.snapshot:
                return self._cg[1]
            prices, volumes = self._moves()
            stamps: dict[int, datetime] = {}
            items: list[dict[str, Any]] = []
            for i, coin in enumerate(self._coins):
                base = coin.coingecko
                if base is None:
                    continue
                item = dict(base)
                m = prices[i]
                if m != 1.0:
                    for key in CG_PRICE_FIELDS:
                        item[key] = scale(item[key], m)
                    item["total_volume"] = scale(item["total_volume"], volumes[i])
                    price, ath = item["current_price"], item["ath"]
                    if isinstance(price, int | float) and isinstance(ath, int | float) and ath:
                        item["ath_change_percentage"] = round((price / ath - 1) * 100, 5)
                lag = (i * 7919 + self.seed) % 240
                moment = stamps.get(lag)
                if moment is None:
                    moment = stamps[lag] = self.clock - timedelta(seconds=lag)
                item["last_updated"] = iso_ms(moment, (i * 389 + self.snapshot) % 1000)
                items.append(item)
            self._cg = (self.snapshot, items)
            return items

    def coinpaprika_items(self) -> list[dict[str, Any]]:
        """`/tickers?quotes=USD` items of the current snapshot (do not mutate)."""
        with self._lock:
            if self._pp is not None and self._pp[0] == self.snapshot:
                return self._pp[1]
            prices, volumes = self._moves()
            stamp = iso_s(self.clock - timedelta(seconds=45))
            items: list[dict[str, Any]] = []
            for i, coin in enumerate(self._coins):
                base = coin.coinpaprika
                if base is None:
                    continue
                item = dict(base)
                item["last_updated"] = stamp
                m = prices[i]
                if m != 1.0:
                    quote = dict(base["quotes"]["USD"])
                    for key in ("price", "market_cap"):
                        value = quote[key]
                        if isinstance(value, int | float) and not isinstance(value, bool):
                            quote[key] = value * m if isinstance(value, float) else round(value * m)
                    if isinstance(quote["volume_24h"], int | float):
                        quote["volume_24h"] = quote["volume_24h"] * volumes[i]
                    price, ath = quote["price"], quote["ath_price"]
                    if isinstance(price, int | float) and isinstance(ath, int | float) and ath:
                        quote["percent_from_price_ath"] = round((price / ath - 1) * 100, 2)
                    item["quotes"] = {"USD": quote}
                items.append(item)
            self._pp = (self.snapshot, items)
            return items

    def coinpaprika_bytes(self, *, free_plan: bool = False, limit: int | None = None) -> bytes:
        """The `/tickers` body, serialized once per snapshot (free plan: no circulating supply)."""
        with self._lock:
            key = (self.snapshot, free_plan, limit)
            cached = self._pp_bytes.get(key)
            if cached is not None:
                return cached
            items = self.coinpaprika_items()
            if limit is not None:
                items = items[:limit]
            if free_plan:
                items = [
                    {k: v for k, v in item.items() if k != "circulating_supply"} for item in items
                ]
            body = orjson.dumps(items)
            self._pp_bytes[key] = body
            return body

    def __len__(self) -> int:
        return len(self._coins)

    def __repr__(self) -> str:
        return f"Universe(coins={self.size}, seed={self.seed}, snapshot={self.snapshot})"
