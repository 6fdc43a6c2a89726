"""What the exchange sources share: which of an asset's pairs becomes its observation.

An exchange lists an asset against several quotes (BTCUSDT, BTCUSDC, BTCEUR, ...). One source
asset per base asset, observed through one pair, keeps the exchange one constituent of the
consensus, not three. The pair is chosen by its quote, in `QUOTE_PREFERENCE` order: USD needs no
conversion; a stablecoin's reference price is the tightest conversion; EUR next; BTC, whose own
price moves most, last. Pairs in any other quote (TRY, BRL, ETH, ...) are not used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

QUOTE_PREFERENCE = ("USD", "USDT", "USDC", "EUR", "BTC")


class Pair(NamedTuple):
    """One tradeable pair: its base and quote as standard tickers, and its item."""

    base: str
    quote: str
    item: Mapping[str, Any]


def preferred_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """Per base asset, its pair in the most preferred quote; bases sorted. A pair whose base is
    its quote, or whose quote is not convertible, is left out."""
    best: dict[str, Pair] = {}
    for pair in pairs:
        if pair.quote not in QUOTE_PREFERENCE or pair.base == pair.quote:
            continue
        seen = best.get(pair.base)
        if seen is None or QUOTE_PREFERENCE.index(pair.quote) < QUOTE_PREFERENCE.index(seen.quote):
            best[pair.base] = pair
    return [best[base] for base in sorted(best)]


def quote_of(quote: str) -> str | None:
    """What `UnifiedRecord.quote` says for a pair's quote: None for USD (nothing to convert)."""
    return None if quote == "USD" else quote
