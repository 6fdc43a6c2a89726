"""What the exchange fakes (Binance, Kraken) share: the universe's coins as pairs.

Each fake lists the universe's coins (the first of each ticker, by market cap) against USD-like
quotes, with prices consistent with the universe's USD prices: a coin at $100 trades at
100 / 1.001 USDT when Tether is at $1.001, and at 100 / 1.08 EUR. EUR is not in the universe: the
fakes hold it at EUR_USD.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kasparro.fakes.universe import Universe

EUR_USD = 1.08  # the fakes' euro, in dollars
QUOTE_COINS = ("USDT", "USDC", "BTC")  # quotes that are coins of the universe


@dataclass(frozen=True, slots=True)
class Listed:
    """A coin as an exchange sees it: its ticker, USD price and 24 h USD volume."""

    ticker: str
    price_usd: float
    volume_usd: float
    rank: int


@dataclass(frozen=True, slots=True)
class Market:
    """The coins one snapshot lists, the quotes' USD prices, and the snapshot's time."""

    coins: list[Listed]
    quote_usd: dict[str, float]
    clock: datetime


def market(universe: Universe, limit: int | None = None) -> Market:
    coins: list[Listed] = []
    seen: set[str] = set()
    for rank, item in enumerate(universe.coingecko_items(), start=1):
        symbol, price, volume = (
            item.get("symbol"),
            item.get("current_price"),
            item.get("total_volume"),
        )
        if not isinstance(symbol, str) or not symbol.isalnum() or not symbol.isascii():
            continue
        ticker = symbol.upper()
        if ticker in seen or not isinstance(price, int | float) or price <= 0:
            continue
        seen.add(ticker)
        volume = float(volume) if isinstance(volume, int | float) and volume > 0 else 0.0
        coins.append(Listed(ticker, float(price), volume, rank))
        if limit is not None and len(coins) >= limit:
            break
    quote_usd: dict[str, float] = {"USD": 1.0, "EUR": EUR_USD}
    for coin in coins:
        if coin.ticker in QUOTE_COINS:
            quote_usd[coin.ticker] = coin.price_usd
    return Market(coins, quote_usd, universe.clock)


def decimal(value: float, places: int = 8) -> str:
    """A price or quantity as exchanges write it: a fixed-point string."""
    return f"{value:.{places}f}"


def in_quote(coin: Listed, quote_usd: float) -> tuple[float, float]:
    """The coin's price and 24 h volume in a quote worth `quote_usd` dollars."""
    return coin.price_usd / quote_usd, coin.volume_usd / quote_usd


def pair_plan(coin: Listed) -> tuple[str, ...]:
    """Which quotes a coin is listed against: every coin in USDT or USD, the larger ones in
    more (so a base has several pairs and the source must choose)."""
    quotes = ["USD", "USDT"]
    if coin.rank <= 40:
        quotes.append("EUR")
    if coin.rank <= 20:
        quotes.append("USDC")
    if coin.rank % 3 == 0:
        quotes.append("BTC")
    return tuple(q for q in quotes if q != coin.ticker)
