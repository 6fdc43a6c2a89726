"""A deterministic universe of coins, as CoinGecko's `/coins/markets` and CoinPaprika's `/tickers`
would list them.

The first coins are real items (`data/`), the rest are generated from `seed`. Everything is a pure
function of `(coins, seed, snapshot)`: without `advance()`, repeated calls return equal items and
the apps serve byte-identical bodies, so an ETL rerun over the fakes is idempotent.
"""

from __future__ import annotations

import math
import random
import threading
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

DATA_DIR = Path(__file__).resolve().parent / "data"
# The clock of snapshot 0; `advance()` moves it forward.
START = datetime(2026, 1, 13, 1, 15, tzinfo=UTC)

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
_CG_PRICE_FIELDS = (
    "current_price",
    "market_cap",
    "fully_diluted_valuation",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "market_cap_change_24h",
)
_PP_PERCENT_FIELDS = (
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
_SYLLABLES = (
    "ka", "zo", "ri", "mex", "lu", "tor", "vin", "qua", "nex", "bit", "dra", "fi", "mo", "pix",
    "ra", "sha", "ton", "vex", "yo", "zen", "lum", "cor", "dex", "al", "be", "xi", "om", "tri",
)  # fmt: skip
_SUFFIXES = (
    "", "", "", "", " Finance", " Protocol", " Network", " Token", " AI", " Inu", " Swap", " DAO",
    " Chain", " Coin",
)  # fmt: skip
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Share of generated coins that copy an earlier coin's ticker (real long tails are full of
# copycats: "PEPE" many times over). It does not grow with the universe, as in real listings,
# where most tickers are unique and one in ten or so is shared.
_COPYCAT_SHARE = 0.06
_CHAINS = (
    "Arbitrum", "Polygon", "Base", "Avalanche", "Optimism", "Linea", "Scroll", "Ronin", "Mantle",
    "zkSync", "Blast", "Sei", "Celo", "Fantom", "Gnosis", "Moonbeam", "Kava", "Metis",
)  # fmt: skip


@dataclass(slots=True)
class _Coin:
    """One coin at snapshot 0: its item at each vendor that lists it."""

    coingecko: dict[str, Any] | None
    coinpaprika: dict[str, Any] | None
    cap: float  # sort key: market cap, descending


def _load(name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = orjson.loads((DATA_DIR / name).read_bytes())
    return items


def _sig(value: float, digits: int = 6) -> float:
    """Round to significant digits, the way CoinGecko prints prices (tiny ones in e-notation)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _scale(value: Any, factor: float) -> Any:
    """Scale a number, keeping integers integers; nulls and "" stay as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, int):
        return round(value * factor)
    return _sig(value * factor)


def _float32(values: list[float]) -> list[float]:
    """CoinPaprika's percentages are float32 widened to float64 (`-0.1599999964237213`)."""
    return array("f", values).tolist()


def _iso_ms(moment: datetime, millis: int) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def _iso_s(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _generated_cap(rank: int) -> float:
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


def _seed_coins(rng: random.Random) -> list[_Coin]:
    coins: list[_Coin] = []
    paprika = {item["id"]: item for item in _load("coinpaprika_tickers.json")}
    used: set[str] = set()
    for item in _load("coingecko_markets.json"):
        cg_id = item["id"]
        pp: dict[str, Any] | None = None
        if cg_id in SEEDED_PAPRIKA_IDS:
            pp = dict(paprika[SEEDED_PAPRIKA_IDS[cg_id]])
            used.add(pp["id"])
        elif cg_id not in COINGECKO_ONLY_SEEDS:
            slug = str(item["name"]).lower().replace(" ", "-").replace(".", "")
            pp = _paprika_from_coingecko(item, f"{str(item['symbol']).lower()}-{slug}")
        coins.append(_Coin(dict(item), pp, float(item.get("market_cap") or 0)))
    for pp_id, pp_item in paprika.items():  # listed by CoinPaprika only (e.g. btcb, the tail)
        if pp_id not in used:
            cap = float(pp_item["quotes"]["USD"]["market_cap"] or 0)
            coins.append(_Coin(None, dict(pp_item), cap))
    for coin in coins:  # CoinPaprika's paid plan adds circulating supply; percentages as float32
        if coin.coinpaprika is None:
            continue
        quote = dict(coin.coinpaprika["quotes"]["USD"])
        price = quote.get("price")
        if "circulating_supply" not in coin.coinpaprika:
            pp_cap = quote.get("market_cap")
            circ = round(pp_cap / price) if isinstance(pp_cap, int | float) and price else 0
            coin.coinpaprika = _with_circulating(coin.coinpaprika, circ)
        missing = [f for f in _PP_PERCENT_FIELDS if f not in quote]
        for field_name, value in zip(
            missing, _float32([round(rng.gauss(0, 2), 2) for _ in missing]), strict=True
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
_PERCENTS = _float32([i / 100 for i in range(-1500, 1501)])
_DAY0 = datetime(2014, 1, 1, tzinfo=UTC)
_DAYS = [_iso_s(_DAY0 + timedelta(days=d)) for d in range(12 * 365)]


def _percent(rng: random.Random, spread: float = 1.0) -> float:
    """A float32 percentage, roughly normal around 0 (triangular from two uniforms)."""
    half = len(_PERCENTS) // 2
    offset = int((rng.random() + rng.random() - 1) * 400 * spread)
    return _PERCENTS[max(0, min(len(_PERCENTS) - 1, half + offset))]


def _date(rng: random.Random, first_year: int, last_year: int) -> str:
    """A midnight ISO date (seconds, `Z`) in [first_year, last_year]."""
    lo, hi = (first_year - 2014) * 365, (last_year - 2013) * 365
    return _DAYS[lo + int(rng.random() * (hi - lo))]


class _Generator:
    """Makes the coins after the seeded ones, from one random stream."""

    def __init__(self, rng: random.Random, eth_price: float, btc_price: float) -> None:
        self.rng = rng
        self.cg_ids: set[str] = set()
        self.pp_ids: set[str] = set()
        self._next_suffix: dict[str, int] = {}
        self.tickers: list[tuple[str, str]] = []  # (ticker, name word) of generated coins
        self.bridges_made = 0
        self.bridged = (
            ("usdc", "USDC", "USD Coin", 1.0),
            ("usdt", "USDT", "Tether", 1.0),
            ("weth", "WETH", "WETH", eth_price),
            ("wbtc", "WBTC", "Wrapped Bitcoin", btc_price),
        )

    def _unique(self, pool: set[str], wanted: str) -> str:
        """`wanted`, or `wanted-2`, `wanted-3`... (CoinGecko's `aster-2`)."""
        candidate = wanted
        n = self._next_suffix.get(wanted, 1)
        while candidate in pool:
            n += 1
            candidate = f"{wanted}-{n}"
        self._next_suffix[wanted] = n
        pool.add(candidate)
        return candidate

    def coin(self, rank: int) -> _Coin:
        rng = self.rng
        rand = rng.random
        cap = _generated_cap(rank) * (0.8 + 0.4 * rand())
        bridges = len(self.bridged) * len(_CHAINS)
        if rank % 37 == 0 and self.bridges_made < bridges:
            # A bridged copy of a major coin (a ticker shared by distinct coins), once per chain.
            made = self.bridges_made
            self.bridges_made += 1
            symbol, upper, base_name, base_price = self.bridged[made % len(self.bridged)]
            chain = _CHAINS[made // len(self.bridged)]
            name = f"{chain} Bridged {base_name} ({chain})"
            slug = f"{chain.lower()}-bridged-{symbol}"
            price = base_price * (0.997 + 0.006 * rand())
            pp_name, presence = name, 1.0
        else:
            n_syllables = 3 + int(rand() * 2)
            word = "".join(_SYLLABLES[int(rand() * len(_SYLLABLES))] for _ in range(n_syllables))
            suffix = _SUFFIXES[int(rand() * len(_SUFFIXES))]
            if self.tickers and rand() < _COPYCAT_SHARE:
                # A copycat takes an earlier coin's ticker, half the time its name too (the
                # second "Pepe" becomes `pepe-2` at CoinGecko).
                upper, copied = self.tickers[int(rand() * len(self.tickers))]
                word = copied if rand() < 0.5 else word
            else:
                extra = "".join(_LETTERS[int(rand() * 26)] for _ in range(2 + int(rand() * 3)))
                upper = (word[0] + extra).upper()
                self.tickers.append((upper, word))
            name = word.capitalize() + suffix
            slug = name.lower().replace(" ", "-")
            symbol = upper.lower()
            price = cap / 10 ** (5 + 7 * rand())
            variant = rand()
            if variant < 0.02 and suffix:
                pp_name = word.capitalize()  # "Foo Token" at CoinGecko is "Foo" at CoinPaprika
            elif variant < 0.04:
                pp_name = name.upper()  # "Usds" / "USDS"
            else:
                pp_name = name
            presence = rand()
        circulating = cap / price
        cg_id = self._unique(self.cg_ids, slug)
        pp_id = self._unique(self.pp_ids, f"{symbol}-{slug}")
        cg = self._coingecko(cg_id, symbol, name, price, cap, circulating)
        pp = self._coinpaprika(pp_id, upper, pp_name, price, cap, circulating, cg)
        if presence < 0.03:
            return _Coin(cg, None, cap)
        if presence < 0.06:
            return _Coin(None, pp, cap)
        return _Coin(cg, pp, cap)

    def _coingecko(
        self, cg_id: str, symbol: str, name: str, price: float, cap: float, circulating: float
    ) -> dict[str, Any]:
        rand = self.rng.random
        change = (rand() + rand() - 1) * 8
        ath = price * (1.05 + 40 * rand() * rand())
        atl = price * (0.01 + 0.89 * rand())
        total = circulating * (1 + 0.6 * rand())
        max_supply = None if rand() < 0.5 else round(total * (1 + rand()))
        roi = None
        if rand() < 0.03:
            times = -0.9 + 40 * rand()
            roi = {"times": times, "currency": "usd", "percentage": times * 100}
        null_price = rand() < 0.004  # CoinGecko lists some coins with no price at all
        null_rank = rand() < 0.003
        millis = int(rand() * 1000)
        image_id = int(rand() * 100_000)
        if null_price:
            moves: dict[str, Any] = dict.fromkeys(
                (*_CG_PRICE_FIELDS, "total_volume", "price_change_percentage_24h"), None
            )
            moves["market_cap_change_percentage_24h"] = None
        else:
            moves = {
                "current_price": _sig(price),
                "market_cap": round(cap),
                "fully_diluted_valuation": (
                    None if max_supply is None else round(price * max_supply)
                ),
                "total_volume": round(cap * (0.001 + 0.3 * rand())),
                "high_24h": _sig(price * (1 + abs(change) / 100 + 0.005)),
                "low_24h": _sig(price * (1 - abs(change) / 200 - 0.005)),
                "price_change_24h": _sig(price * change / 100),
                "price_change_percentage_24h": round(change, 5),
                "market_cap_change_24h": _sig(cap * change / 100),
                "market_cap_change_percentage_24h": round(change * 0.98, 5),
            }
        return {
            "id": cg_id,
            "symbol": symbol,
            "name": name,
            "image": f"https://coin-images.coingecko.com/coins/images/{image_id}/large/{cg_id}.png",
            "current_price": moves["current_price"],
            "market_cap": moves["market_cap"],
            "market_cap_rank": None if null_rank else 0,
            "fully_diluted_valuation": moves["fully_diluted_valuation"],
            "total_volume": moves["total_volume"],
            "high_24h": moves["high_24h"],
            "low_24h": moves["low_24h"],
            "price_change_24h": moves["price_change_24h"],
            "price_change_percentage_24h": moves["price_change_percentage_24h"],
            "market_cap_change_24h": moves["market_cap_change_24h"],
            "market_cap_change_percentage_24h": moves["market_cap_change_percentage_24h"],
            "circulating_supply": float(round(circulating)),
            "total_supply": float(round(total)),
            "max_supply": None if max_supply is None else float(max_supply),
            "ath": _sig(ath),
            "ath_change_percentage": round((price / ath - 1) * 100, 5),
            "ath_date": _date(self.rng, 2021, 2025)[:19] + f".{millis:03d}Z",
            "atl": _sig(atl),
            "atl_change_percentage": round((price / atl - 1) * 100, 5),
            "atl_date": _date(self.rng, 2017, 2020)[:19] + ".000Z",
            "roi": roi,
            "last_updated": "",
        }

    def _coinpaprika(
        self,
        pp_id: str,
        symbol: str,
        name: str,
        price: float,
        cap: float,
        circulating: float,
        cg: dict[str, Any],
    ) -> dict[str, Any]:
        rng = self.rng
        rand = rng.random
        quote: dict[str, Any] = {
            "price": price * (0.995 + 0.01 * rand()),
            "volume_24h": cap * (0.001 + 0.3 * rand()),
            "volume_24h_change_24h": _percent(rng, 5),
            "market_cap": round(cap),
        }
        for field_name in _PP_PERCENT_FIELDS[1:]:
            quote[field_name] = _percent(rng)
        blank = rand()
        if blank < 0.01:  # the spec's "missing value" is an empty string
            quote["volume_24h_change_24h"] = ""
            quote["market_cap"] = ""
        if blank < 0.003:
            quote["price"] = ""
        if rand() < 0.02:
            quote.update(ath_price=None, ath_date=None, percent_from_price_ath=None)
        else:
            ath = float(cg["ath"]) * (0.99 + 0.02 * rand())
            quote["ath_price"] = ath
            quote["ath_date"] = str(cg["ath_date"])[:19] + "Z"
            quote["percent_from_price_ath"] = round((price / ath - 1) * 100, 2)
        max_supply = cg["max_supply"]
        return {
            "id": pp_id,
            "name": name,
            "symbol": symbol,
            "rank": 0,
            "circulating_supply": round(circulating),
            "total_supply": round(cg["total_supply"]),
            "max_supply": 0 if max_supply is None else round(max_supply),
            "beta_value": round(0.1 + 2 * rand(), 6),
            "first_data_at": _date(rng, 2014, 2025),
            "last_updated": "",
            "quotes": {"USD": quote},
        }


def _build(count: int, seed: int) -> list[_Coin]:
    rng = random.Random(seed)
    seeds = _seed_coins(random.Random(seed + 1))
    by_id = {c.coingecko["id"]: c.coingecko for c in seeds if c.coingecko is not None}
    generator = _Generator(
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
                    for key in _CG_PRICE_FIELDS:
                        item[key] = _scale(item[key], m)
                    item["total_volume"] = _scale(item["total_volume"], volumes[i])
                    price, ath = item["current_price"], item["ath"]
                    if isinstance(price, int | float) and isinstance(ath, int | float) and ath:
                        item["ath_change_percentage"] = round((price / ath - 1) * 100, 5)
                lag = (i * 7919 + self.seed) % 240
                moment = stamps.get(lag)
                if moment is None:
                    moment = stamps[lag] = self.clock - timedelta(seconds=lag)
                item["last_updated"] = _iso_ms(moment, (i * 389 + self.snapshot) % 1000)
                items.append(item)
            self._cg = (self.snapshot, items)
            return items

    def coinpaprika_items(self) -> list[dict[str, Any]]:
        """`/tickers?quotes=USD` items of the current snapshot (do not mutate)."""
        with self._lock:
            if self._pp is not None and self._pp[0] == self.snapshot:
                return self._pp[1]
            prices, volumes = self._moves()
            stamp = _iso_s(self.clock - timedelta(seconds=45))
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
