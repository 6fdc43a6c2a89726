"""A fixed universe: given coins with given prices, served by the fake apps as the vendors would.

`Universe` generates its coins; `Listing` takes them, so an evaluation can serve a real vendor
listing (ids, tickers, names) with market numbers of its own choosing. The items have the shape
of what the fakes serve (`universe.py`), so the real normalizers and the drift checks accept them.
It never moves: `snapshot` stays 0 and every call returns the same items.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson

from kasparro.fakes.faults import FakeState
from kasparro.fakes.seeds import PP_PERCENT_FIELDS, iso_ms, iso_s, sig
from kasparro.fakes.server import FakeUpstreams
from kasparro.fakes.universe import Universe

_BIG = 2**53  # beyond this an integer supply is sent as a float (orjson refuses > 64 bits)


@dataclass(frozen=True, slots=True)
class ListedCoin:
    """One coin at one vendor: its listing entry and the market numbers to serve for it."""

    id: str
    symbol: str
    name: str
    price: float
    market_cap: float


def coingecko_item(coin: ListedCoin, rank: int, stamp: datetime) -> dict[str, Any]:
    """A `/coins/markets` item (every field the fakes serve, derived from price and cap)."""
    price, cap = coin.price, coin.market_cap
    supply = float(round(cap / price))
    return {
        "id": coin.id,
        "symbol": coin.symbol,
        "name": coin.name,
        "image": f"https://coin-images.coingecko.com/coins/images/{rank}/large/{coin.id}.png",
        "current_price": sig(price),
        "market_cap": round(cap),
        "market_cap_rank": rank,
        "fully_diluted_valuation": None,
        "total_volume": round(cap * 0.05),
        "high_24h": sig(price * 1.02),
        "low_24h": sig(price * 0.98),
        "price_change_24h": sig(price * 0.01),
        "price_change_percentage_24h": 1.0,
        "market_cap_change_24h": sig(cap * 0.01),
        "market_cap_change_percentage_24h": 1.0,
        "circulating_supply": supply,
        "total_supply": supply,
        "max_supply": None,
        "ath": sig(price * 2),
        "ath_change_percentage": -50.0,
        "ath_date": "2024-12-17T00:00:00.000Z",
        "atl": sig(price / 2),
        "atl_change_percentage": 100.0,
        "atl_date": "2020-03-13T00:00:00.000Z",
        "roi": None,
        "last_updated": iso_ms(stamp, 0),
    }


def coinpaprika_item(coin: ListedCoin, rank: int, stamp: datetime) -> dict[str, Any]:
    """A `/tickers?quotes=USD` item (paid plan: with circulating supply)."""
    price, cap = coin.price, coin.market_cap
    supply = round(cap / price)
    whole: int | float = supply if supply < _BIG else float(supply)
    quote: dict[str, Any] = {
        "price": price,
        "volume_24h": cap * 0.05,
        "market_cap": round(cap),  # the real `/tickers` quotes carry it
        **dict.fromkeys(PP_PERCENT_FIELDS, 0.0),
        "ath_price": price * 2,
        "ath_date": "2024-12-17T00:00:00Z",
        "percent_from_price_ath": -50.0,
    }
    return {
        "id": coin.id,
        "name": coin.name,
        "symbol": coin.symbol,
        "rank": rank,
        "circulating_supply": whole,
        "total_supply": whole,
        "max_supply": 0,
        "beta_value": 1.0,
        "first_data_at": "2020-01-01T00:00:00Z",
        "last_updated": iso_s(stamp),
        "quotes": {"USD": quote},
    }


class Listing:
    """Fixed coins at both vendors, ranked by market cap, observed at `clock`.

    Serves the same reads the fake apps make of a `Universe` (`snapshot`, `coingecko_items()`,
    `coinpaprika_items()`, `coinpaprika_bytes()`); `serve()` puts it behind them.
    """

    def __init__(
        self,
        coingecko: Sequence[ListedCoin],
        coinpaprika: Sequence[ListedCoin],
        clock: datetime,
    ) -> None:
        self.snapshot = 0
        self.clock = clock
        self._cg = [
            coingecko_item(c, rank, clock) for rank, c in enumerate(_by_cap(coingecko), start=1)
        ]
        self._pp = [
            coinpaprika_item(c, rank, clock) for rank, c in enumerate(_by_cap(coinpaprika), start=1)
        ]
        self._lock = threading.Lock()
        self._pp_bytes: dict[tuple[bool, int | None], bytes] = {}

    def coingecko_items(self) -> list[dict[str, Any]]:
        return self._cg

    def coinpaprika_items(self) -> list[dict[str, Any]]:
        return self._pp

    def coinpaprika_bytes(self, *, free_plan: bool = False, limit: int | None = None) -> bytes:
        with self._lock:
            cached = self._pp_bytes.get((free_plan, limit))
            if cached is None:
                items = self._pp if limit is None else self._pp[:limit]
                if free_plan:
                    items = [
                        {k: v for k, v in i.items() if k != "circulating_supply"} for i in items
                    ]
                cached = self._pp_bytes[(free_plan, limit)] = orjson.dumps(items)
            return cached

    def __len__(self) -> int:
        return max(len(self._cg), len(self._pp))


def serve(listing: Listing) -> FakeUpstreams:
    """Both fakes over `listing` (start them with `with`)."""
    # The apps only read the four members Listing has; FakeState is typed for the generator.
    return FakeUpstreams(state=FakeState(universe=cast(Universe, listing)))


def _by_cap(coins: Sequence[ListedCoin]) -> list[ListedCoin]:
    return sorted(coins, key=lambda c: (-c.market_cap, c.id))
