"""A fake of Kraken's public REST API: `/0/public/Assets`, `AssetPairs`, `Ticker`, `Time`,
`SystemStatus`.

Built from Kraken's public documentation (krakenfx/api-specs `spot-rest` OpenAPI, excerpts in
shared/upstream-specs/kraken-api-specs; docs.kraken.com REST introduction and errors guide; the
rate-limit notes in shared/upstream-specs/FACTS.md) and the real bodies recorded in tests/samples/
(kraken_Assets_Horndev-Bitcoin-Exchange-APIs.NET_legacy-schema.json: asset codes and altnames,
`XXBT` -> `XBT`, `XXDG` -> `XDG`; kraken_AssetPairs_agent-dog-dev-agent-dog_EXCERPT.json: today's
pair fields; kraken_Ticker_Horndev-Bitcoin-Exchange-APIs.NET_legacy-2-element-a-b.json: the ticker
arrays). What it plays:

- the envelope `{"error": [...], "result": {...}}`, compact, HTTP 200 for API errors;
- legacy asset codes (`XXBT`, `XETH`, `XXDG`, `XLTC`, `XXRP`, `ZUSD`, `ZEUR`) and plain ones,
  pair keys gluing them (`XXBTZUSD`, but `SOLUSD`), `altname`, `wsname`;
- `pair=` naming an unknown pair: `{"error": ["EQuery:Unknown asset pair"]}` with no result;
- `partial_errors`: the no-`pair` Ticker answering errors beside a result (DigitalRuby/
  ExchangeSharp #783);
- the public throttle (`calls_per_second`, about 1 in production): `EGeneral:Too many requests`.

Shared faults: `rate_limit` is `EAPI:Rate limit exceeded`, `server_error` `EService:Unavailable`
(both HTTP 200), `html` a Cloudflare page, `truncated`, `slow`, `drift` (on Ticker's objects).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kasparro.fakes.exchanges import Listed, Market, in_quote, market, pair_plan
from kasparro.fakes.faults import (
    FakeState,
    admin_routes,
    delay,
    drift_item,
    html_page,
    json_response,
    truncated,
)
from kasparro.fakes.plugin import FakeVendor, own_state

VENDOR = "kraken"
PREFIX = "/0/public"
# Kraken's legacy codes and altnames for the tickers the rest of the market uses.
LEGACY = {
    "BTC": ("XXBT", "XBT"),
    "ETH": ("XETH", "ETH"),
    "DOGE": ("XXDG", "XDG"),
    "LTC": ("XLTC", "LTC"),
    "XRP": ("XXRP", "XRP"),
    "USD": ("ZUSD", "USD"),
    "EUR": ("ZEUR", "EUR"),
}
KRAKEN_QUOTES = ("USD", "EUR", "USDT", "BTC")


@dataclass
class KrakenFake:
    """What the fake Kraken keeps: its throttle and whether Ticker adds errors to a result."""

    calls_per_second: float | None = None
    partial_errors: bool = False


def state_of(state: FakeState) -> KrakenFake:
    return own_state(state, VENDOR, KrakenFake)


def code_of(ticker: str) -> tuple[str, str]:
    """(asset code, altname) of a ticker."""
    return LEGACY.get(ticker, (ticker, ticker))


def pair_key(base: str, quote: str) -> str:
    base_code, base_alt = code_of(base)
    quote_code, quote_alt = code_of(quote)
    if len(base_code) == 4 and base_code[0] in "XZ" and base in LEGACY:
        return base_code + quote_code
    return base_alt + (quote_code if quote in ("USD", "EUR") and base == "USDT" else quote_alt)


def pairs(snapshot: Market) -> list[tuple[str, Listed | None, str, str, float, float]]:
    """(key, coin, base, quote, price in quote, volume in base) of every pair listed."""
    rows: list[tuple[str, Listed | None, str, str, float, float]] = []
    for coin in snapshot.coins:
        for quote in pair_plan(coin):
            quote = "USD" if quote == "USDC" else quote
            if (
                quote not in KRAKEN_QUOTES
                or quote not in snapshot.quote_usd
                or quote == coin.ticker
            ):
                continue
            price, volume = in_quote(coin, snapshot.quote_usd[quote])
            key = pair_key(coin.ticker, quote)
            if all(r[0] != key for r in rows):
                rows.append((key, coin, coin.ticker, quote, price, volume / price if price else 0))
    rows.append(("ZEURZUSD", None, "EUR", "USD", snapshot.quote_usd["EUR"], 2.5e7))
    return rows


def assets_result(snapshot: Market) -> dict[str, Any]:
    tickers = {"USD", "EUR", *(c.ticker for c in snapshot.coins)}
    result = {}
    for ticker in sorted(tickers):
        code, altname = code_of(ticker)
        fiat = ticker in ("USD", "EUR")
        result[code] = {
            "aclass": "currency",
            "altname": altname,
            "decimals": 4 if fiat else 10,
            "display_decimals": 2 if fiat else 5,
            "status": "enabled",
        }
    return result


def pair_item(base: str, quote: str) -> dict[str, Any]:
    base_code, base_alt = code_of(base)
    quote_code, quote_alt = code_of(quote)
    return {
        "altname": base_alt + quote_alt,
        "wsname": f"{base_alt}/{quote_alt}",
        "aclass_base": "currency",
        "base": base_code,
        "aclass_quote": "currency",
        "quote": quote_code,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": 5,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, 0.4], [10000, 0.35]],
        "fees_maker": [[0, 0.25], [10000, 0.2]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.0001",
        "costmin": "0.5",
        "tick_size": "0.00001",
        "status": "online",
    }


def ticker_item(price: float, volume: float) -> dict[str, Any]:
    places = 5 if price >= 1 else 10  # each pair's own `pair_decimals`: small prices get more

    def fixed(value: float, _: int = 0) -> str:
        return f"{value:.{places}f}"

    return {
        "a": [fixed(price * 1.0001, 5), "1", "1.000"],
        "b": [fixed(price * 0.9999, 5), "2", "2.000"],
        "c": [fixed(price, 5), fixed(0.01)],
        "v": [fixed(volume / 2), fixed(volume)],
        "p": [fixed(price, 5), fixed(price, 5)],
        "t": [500, 1000],
        "l": [fixed(price * 0.98, 5), fixed(price * 0.97, 5)],
        "h": [fixed(price * 1.02, 5), fixed(price * 1.03, 5)],
        "o": fixed(price * 0.99, 5),
    }


def answer(result: Any = None, errors: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"error": errors or []}
    if result is not None:
        body["result"] = result
    return json_response(body)


def kraken_app(state: FakeState) -> Starlette:
    """The fake Kraken; every request reads `state` afresh."""

    async def early(request: Request) -> Response | None:
        state.record(VENDOR, request)
        fault = state.take_fault(VENDOR)
        if fault is not None:
            if fault.kind == "rate_limit":
                return answer(errors=["EAPI:Rate limit exceeded"])
            if fault.kind == "server_error":
                return answer(errors=["EService:Unavailable"])
            if fault.kind == "html":
                return html_page(fault, "api.kraken.com")
            if fault.kind == "truncated":
                return truncated(b'{"error":[],"result":{"XXBTZUSD":{"a":["6')
            if fault.kind in ("slow", "timeout"):
                await delay(fault)
        per_second = state_of(state).calls_per_second
        if per_second is not None and state.over_limit(VENDOR, per_second, 1) is not None:
            return answer(errors=["EGeneral:Too many requests"])
        return None

    async def assets(request: Request) -> Response:
        refused = await early(request)
        return refused or answer(assets_result(market(state.universe)))

    async def asset_pairs(request: Request) -> Response:
        refused = await early(request)
        if refused is not None:
            return refused
        rows = pairs(market(state.universe))
        return answer({key: pair_item(base, quote) for key, _, base, quote, _, _ in rows})

    async def ticker(request: Request) -> Response:
        refused = await early(request)
        if refused is not None:
            return refused
        rows = pairs(market(state.universe))
        drifts = state.drifts(VENDOR)
        result = {
            key: drift_item(ticker_item(price, volume), drifts)
            for key, _, _, _, price, volume in rows
        }
        wanted = request.query_params.get("pair")
        if wanted is not None:
            names = wanted.split(",")
            altnames = {pair_item(b, q)["altname"]: k for k, _, b, q, _, _ in rows}
            keys = [n if n in result else altnames.get(n) for n in names]
            if any(k is None for k in keys):
                return answer(errors=["EQuery:Unknown asset pair"])
            return answer({k: result[k] for k in keys if k is not None})
        errors = ["EQuery:Unknown asset pair"] * 3 if state_of(state).partial_errors else []
        return answer(result, errors)

    async def server_time(request: Request) -> Response:
        refused = await early(request)
        if refused is not None:
            return refused
        clock = state.universe.clock
        return answer(
            {
                "unixtime": int(clock.timestamp()),
                "rfc1123": clock.strftime("%a, %d %b %y %H:%M:%S +0000"),
            }
        )

    async def system_status(request: Request) -> Response:
        refused = await early(request)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return refused or answer({"status": "online", "timestamp": stamp})

    return Starlette(
        routes=[
            Route(f"{PREFIX}/Assets", assets),
            Route(f"{PREFIX}/AssetPairs", asset_pairs),
            Route(f"{PREFIX}/Ticker", ticker),
            Route(f"{PREFIX}/Time", server_time),
            Route(f"{PREFIX}/SystemStatus", system_status),
            *admin_routes(state),
        ]
    )


def settings(state: FakeState, url: str) -> dict[str, Any]:
    return {"kraken_base_url": url}


FAKE = FakeVendor(VENDOR, kraken_app, settings=settings)
