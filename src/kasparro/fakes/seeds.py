"""The real coins the fake universe starts from (`data/`), and the numeric and time helpers that
every coin, real or generated, is rendered with."""

from __future__ import annotations

import math
import random
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

DATA_DIR = Path(__file__).resolve().parent / "data"

# Real CoinGecko id -> real CoinPaprika id for the seeded coins present in both samples.
SEEDED_PAPRIKA_IDS: dict[str, str] = {
    "bitcoin": "btc-bitcoin",
    "ethereum": "eth-ethereum",
    "tether": "usdt-tether",
    "binancecoin": "bnb-binance-coin",
    "ripple": "xrp-xrp",
    "usd-coin": "usdc-usd-coin",
    "solana": "sol-solana",
    "tron": "trx-tron",
    "staked-ether": "steth-lido-staked-ether",
    "dogecoin": "doge-dogecoin",
    "hyperliquid": "hype-hyperliquid",
    "usds": "usds-usds",
    "wrapped-bitcoin": "wbtc-wrapped-bitcoin",
    "cardano": "ada-cardano",
    "wrapped-steth": "wsteth-wrapped-liquid-staked-ether-20",
    "leo-token": "leo-leo-token",
    "zcash": "zec-zcash",
    "bitcoin-cash": "bch-bitcoin-cash",
    "weth": "weth-weth",
    "whitebit": "wbt-whitebit",
    "monero": "xmr-monero",
    "chainlink": "link-chainlink",
    "wrapped-eeth": "weeth-wrapped-eeth",
    "the-open-network": "toncoin-the-open-network",
}
# Seeded CoinGecko coins that CoinPaprika does not list (some coins live in one vendor only).
COINGECKO_ONLY_SEEDS = frozenset({"figure-heloc", "canton-network", "world-liberty-financial"})

# CoinGecko fields scaled with the price, and the one scaled with the volume.
CG_PRICE_FIELDS = (
    "current_price",
    "market_cap",
    "fully_diluted_valuation",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "market_cap_change_24h",
)
PP_PERCENT_FIELDS = (
    "volume_24h_change_24h",
    "market_cap_change_24h",
    "percent_change_15m",
    "percent_change_30m",
    "percent_change_1h",
    "percent_change_6h",
    "percent_change_12h",
    "percent_change_24h",
    "percent_change_7d",
    "percent_change_30d",
    "percent_change_1y",
)


@dataclass(slots=True)
class Coin:
    """One coin at snapshot 0: its item at each vendor that lists it."""

    coingecko: dict[str, Any] | None
    coinpaprika: dict[str, Any] | None
    cap: float  # sort key: market cap, descending


def _load(name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = orjson.loads((DATA_DIR / name).read_bytes())
    return items


def sig(value: float, digits: int = 6) -> float:
    """Round to significant digits, the way CoinGecko prints prices (tiny ones in e-notation)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def scale(value: Any, factor: float) -> Any:
    """Scale a number, keeping integers integers; nulls and "" stay as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int):
        return round(value * factor)
    return sig(value * factor)


def float32(values: list[float]) -> list[float]:
    """CoinPaprika's percentages are float32 widened to float64 (`-0.1599999964237213`)."""
    return array("f", values).tolist()


def iso_ms(moment: datetime, millis: int) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def iso_s(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generated_cap(rank: int) -> float:
    """A market cap by rank, close to the real curve ($4.5bn at 100, $450k at 2,000)."""
    if rank <= 2000:
        return float(4.5e9 * (100 / rank) ** 3.07)
    return float(4.5e5 * (2000 / rank) ** 1.2)


def _paprika_from_coingecko(item: dict[str, Any], paprika_id: str) -> dict[str, Any]:
    """A CoinPaprika ticker for a seeded CoinGecko coin that the paprika sample lacks."""
    price = item.get("current_price") or 0.0
    ath = item.get("ath")
    return {
        "id": paprika_id,
        "name": item["name"],
        "symbol": str(item["symbol"]).upper(),
        "rank": 0,
        "circulating_supply": round(item.get("circulating_supply") or 0),
        "total_supply": round(item.get("total_supply") or 0),
        "max_supply": round(item.get("max_supply") or 0),
        "beta_value": 1.0,
        "first_data_at": (item.get("atl_date") or "2020-01-01T00:00:00.000Z")[:19] + "Z",
        "last_updated": "",
        "quotes": {
            "USD": {
                "price": price,
                "volume_24h": item.get("total_volume"),
                "market_cap": item.get("market_cap"),
                "ath_price": ath,
                "ath_date": (item.get("ath_date") or "")[:19] + "Z"
                if item.get("ath_date")
                else None,
                "percent_from_price_ath": (
                    round((price / ath - 1) * 100, 2) if ath and price else None
                ),
            }
        },
    }


def _at_price_of(pp_item: dict[str, Any], cg_item: dict[str, Any]) -> dict[str, Any]:
    """The recorded CoinPaprika snapshot, rescaled to the CoinGecko one's price.

    The two recordings are months apart (Solana 94.4 vs 139.27 USD), but the fakes serve both as
    of one moment, when real vendors agree within a few percent: a 47% gap at one instant is
    evidence of two different coins, which is not what these seeds are.
    """
    quote = dict(pp_item["quotes"]["USD"])
    price, target = quote.get("price"), cg_item.get("current_price")
    if not (isinstance(price, int | float) and isinstance(target, int | float)):
        return pp_item
    if price <= 0 or target <= 0:
        return pp_item
    factor = target / price
    for key in ("price", "ath_price", "market_cap", "volume_24h"):
        value = quote.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            quote[key] = round(value * factor)
        elif isinstance(value, float):
            quote[key] = sig(value * factor)
    return {**pp_item, "quotes": {**pp_item["quotes"], "USD": quote}}


def seed_coins(rng: random.Random) -> list[Coin]:
    coins: list[Coin] = []
    paprika = {item["id"]: item for item in _load("coinpaprika_tickers.json")}
    used: set[str] = set()
    for item in _load("coingecko_markets.json"):
        cg_id = item["id"]
        pp: dict[str, Any] | None = None
        if cg_id in SEEDED_PAPRIKA_IDS:
            pp = _at_price_of(dict(paprika[SEEDED_PAPRIKA_IDS[cg_id]]), item)
            used.add(pp["id"])
        elif cg_id not in COINGECKO_ONLY_SEEDS:
            slug = str(item["name"]).lower().replace(" ", "-").replace(".", "")
            pp = _paprika_from_coingecko(item, f"{str(item['symbol']).lower()}-{slug}")
        coins.append(Coin(dict(item), pp, float(item.get("market_cap") or 0)))
    for pp_id, pp_item in paprika.items():  # listed by CoinPaprika only (e.g. btcb, the tail)
        if pp_id not in used:
            cap = float(pp_item["quotes"]["USD"]["market_cap"] or 0)
            coins.append(Coin(None, dict(pp_item), cap))
    for coin in coins:  # CoinPaprika's paid plan adds circulating supply; percentages as float32
        if coin.coinpaprika is None:
            continue
        quote = dict(coin.coinpaprika["quotes"]["USD"])
        price = quote.get("price")
        if "circulating_supply" not in coin.coinpaprika:
            pp_cap = quote.get("market_cap")
            circ = round(pp_cap / price) if isinstance(pp_cap, int | float) and price else 0
            coin.coinpaprika = _with_circulating(coin.coinpaprika, circ)
        missing = [f for f in PP_PERCENT_FIELDS if f not in quote]
        for field_name, value in zip(
            missing, float32([round(rng.gauss(0, 2), 2) for _ in missing]), strict=True
        ):
            quote[field_name] = value
        coin.coinpaprika["quotes"] = {"USD": {k: quote.get(k) for k in _PP_QUOTE_ORDER}}
    return coins


_PP_QUOTE_ORDER = (
    "price",
    "volume_24h",
    "volume_24h_change_24h",
    "market_cap",
    "market_cap_change_24h",
    "percent_change_15m",
    "percent_change_30m",
    "percent_change_1h",
    "percent_change_6h",
    "percent_change_12h",
    "percent_change_24h",
    "percent_change_7d",
    "percent_change_30d",
    "percent_change_1y",
    "ath_price",
    "ath_date",
    "percent_from_price_ath",
)


def _with_circulating(item: dict[str, Any], circulating: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "total_supply":
            out["circulating_supply"] = circulating
        out[key] = value
    return out


# Cheap lookup tables for the generator (100,000 coins must build in a few seconds).
_PERCENTS = float32([i / 100 for i in range(-1500, 1501)])
_DAY0 = datetime(2014, 1, 1, tzinfo=UTC)
_DAYS = [iso_s(_DAY0 + timedelta(days=d)) for d in range(12 * 365)]


def percent(rng: random.Random, spread: float = 1.0) -> float:
    """A float32 percentage, roughly normal around 0 (triangular from two uniforms)."""
    half = len(_PERCENTS) // 2
    offset = int((rng.random() + rng.random() - 1) * 400 * spread)
    return _PERCENTS[max(0, min(len(_PERCENTS) - 1, half + offset))]


def date(rng: random.Random, first_year: int, last_year: int) -> str:
    """A midnight ISO date (seconds, `Z`) in [first_year, last_year]."""
    lo, hi = (first_year - 2014) * 365, (last_year - 2013) * 365
    return _DAYS[lo + int(rng.random() * (hi - lo))]
