"""Synthetic coins past the real ones: plausible names, tickers (some copycats), chains and market
data, drawn from one seeded random generator."""

from __future__ import annotations

import random
from typing import Any

from kasparro.fakes.seeds import (
    CG_PRICE_FIELDS,
    PP_PERCENT_FIELDS,
    Coin,
    date,
    generated_cap,
    percent,
    sig,
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


class Generator:
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

    def coin(self, rank: int) -> Coin:
        rng = self.rng
        rand = rng.random
        cap = generated_cap(rank) * (0.8 + 0.4 * rand())
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
            return Coin(cg, None, cap)
        if presence < 0.06:
            return Coin(None, pp, cap)
        return Coin(cg, pp, cap)

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
                (*CG_PRICE_FIELDS, "total_volume", "price_change_percentage_24h"), None
            )
            moves["market_cap_change_percentage_24h"] = None
        else:
            moves = {
                "current_price": sig(price),
                "market_cap": round(cap),
                "fully_diluted_valuation": (
                    None if max_supply is None else round(price * max_supply)
                ),
                "total_volume": round(cap * (0.001 + 0.3 * rand())),
                "high_24h": sig(price * (1 + abs(change) / 100 + 0.005)),
                "low_24h": sig(price * (1 - abs(change) / 200 - 0.005)),
                "price_change_24h": sig(price * change / 100),
                "price_change_percentage_24h": round(change, 5),
                "market_cap_change_24h": sig(cap * change / 100),
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
            "ath": sig(ath),
            "ath_change_percentage": round((price / ath - 1) * 100, 5),
            "ath_date": date(self.rng, 2021, 2025)[:19] + f".{millis:03d}Z",
            "atl": sig(atl),
            "atl_change_percentage": round((price / atl - 1) * 100, 5),
            "atl_date": date(self.rng, 2017, 2020)[:19] + ".000Z",
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
            "volume_24h_change_24h": percent(rng, 5),
            "market_cap": round(cap),
        }
        for field_name in PP_PERCENT_FIELDS[1:]:
            quote[field_name] = percent(rng)
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
            "first_data_at": date(rng, 2014, 2025),
            "last_updated": "",
            "quotes": {"USD": quote},
        }
