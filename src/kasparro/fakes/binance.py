"""A fake of Binance spot market data: `/api/v3/ticker/24hr`, `/api/v3/exchangeInfo`,
`/api/v3/ping`.

Built from Binance's public documentation (binance/binance-spot-api-docs: rest-api.md "General
API Information", "LIMITS", the endpoints' weights; errors.md; faqs/market_data_only.md; as
summarized in shared/upstream-specs/FACTS.md) and the real bodies recorded in tests/samples/
(binance_ticker-24hr_johnthotekat-onchain-monitor_2024-03-10_EXCERPT.json: the item shape and a
delisted pair's zeros; binance_exchangeInfo_preangelleo-Expenditure_bot_2023-12-11_EXCERPT.json:
the envelope, `rateLimits`, a symbol; binance_error451-restricted-location_crypto-power-
cryptopower_2024-05-09.json: the 451 body, served as recorded). What it plays:

- request weight per IP per minute (`exchangeInfo` 20, `ticker/24hr` 80 for every symbol, 2 for
  one, `ping` 1), reported in `X-MBX-USED-WEIGHT-1M` on every answer;
- over the limit: 429 `{"code": -1003, ...}` with `Retry-After`; a call after a 429 in the same
  window: the IP is banned, 418 with `Retry-After`, until the ban ends;
- 451 from a restricted location (`restricted`), as recorded;
- `symbol=` an unknown symbol: 400 `{"code": -1121, "msg": "Invalid symbol."}`;
- every TRADING pair of the universe's coins in USD-like quotes, plus a delisted pair (status
  BREAK, all-zero prices, `count` 0) and a pair in a quote no source converts (TRY).

What it does not play: the weight of `symbols=` lists, MINI tickers, the RAW_REQUESTS limit.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kasparro.fakes.exchanges import Market, decimal, in_quote, market, pair_plan
from kasparro.fakes.faults import (
    FakeState,
    admin_routes,
    delay,
    drifted,
    html_page,
    json_response,
    truncated,
    with_extra_items,
)
from kasparro.fakes.plugin import FakeVendor, own_state

VENDOR = "binance"
WEIGHTS = {"/api/v3/exchangeInfo": 20, "/api/v3/ticker/24hr": 80, "/api/v3/ping": 1}
RESTRICTED = (
    "Service unavailable from a restricted location according to 'b. Eligibility' in "
    "https://www.binance.com/en/terms. Please contact customer service if you believe you "
    "received this message in error."
)
DAY_MS = 86_400_000


@dataclass
class BinanceFake:
    """What the fake Binance keeps: the weight budget, its window, a ban, the location."""

    weight_limit: int = 6000
    restricted: bool = False
    spent: deque[tuple[float, int]] = field(default_factory=deque)
    warned: bool = False  # a 429 was sent in the current window: the next call is banned
    banned_until: float = 0.0

    def used(self, now: float) -> int:
        while self.spent and self.spent[0][0] <= now - 60:
            self.spent.popleft()
        if not self.spent:
            self.warned = False
        return sum(w for _, w in self.spent)

    def spend(self, weight: int, now: float | None = None) -> None:
        """Weight used by calls this fake did not see (another program on the same IP)."""
        self.spent.append((time.monotonic() if now is None else now, weight))


def state_of(state: FakeState) -> BinanceFake:
    return own_state(state, VENDOR, BinanceFake)


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"code": code, "msg": message}, status, headers)


def symbols(snapshot: Market) -> list[tuple[str, str, str, str, float, float]]:
    """(symbol, status, base, quote, price in quote, volume in quote) of every listed pair."""
    rows = []
    for coin in snapshot.coins:
        for quote in pair_plan(coin):
            if quote == "USD" or quote not in snapshot.quote_usd:
                continue  # binance.com has no USD pairs
            price, volume = in_quote(coin, snapshot.quote_usd[quote])
            rows.append((coin.ticker + quote, "TRADING", coin.ticker, quote, price, volume))
    if "USDT" in snapshot.quote_usd:
        usdt = snapshot.quote_usd["USDT"]
        rows.append(("EURUSDT", "TRADING", "EUR", "USDT", snapshot.quote_usd["EUR"] / usdt, 4e7))
        if snapshot.coins:
            top = snapshot.coins[0]
            rows.append((top.ticker + "TRY", "TRADING", top.ticker, "TRY", top.price_usd * 32, 1e8))
    rows.append(("BCCBTC", "BREAK", "BCC", "BTC", 0.0, 0.0))
    return rows


def ticker_item(row: tuple[str, str, str, str, float, float], close_ms: int) -> dict[str, Any]:
    symbol, status, _, _, price, volume = row
    live = status == "TRADING"
    opened = price * 0.99
    return {
        "symbol": symbol,
        "priceChange": decimal(price - opened if live else 0.0),
        "priceChangePercent": f"{1.0 if live else 0.0:.3f}",
        "weightedAvgPrice": decimal(price),
        "prevClosePrice": decimal(opened if live else 0.0012),
        "lastPrice": decimal(price),
        "lastQty": decimal(1.5 if live else 0.0),
        "bidPrice": decimal(price * 0.9999),
        "bidQty": decimal(10.0 if live else 0.0),
        "askPrice": decimal(price * 1.0001 if live else 0.0),
        "askQty": decimal(12.0 if live else 0.0),
        "openPrice": decimal(opened if live else 0.0),
        "highPrice": decimal(price * 1.01),
        "lowPrice": decimal(opened * 0.99),
        "volume": decimal(volume / price if live and price else 0.0),
        "quoteVolume": decimal(volume),
        "openTime": close_ms - DAY_MS if live else 1702531345578,
        "closeTime": close_ms if live else 1702531345578 + DAY_MS,
        "firstId": 1000 if live else -1,
        "lastId": 1999 if live else -1,
        "count": 1000 if live else 0,
    }


def symbol_item(row: tuple[str, str, str, str, float, float]) -> dict[str, Any]:
    symbol, status, base, quote, _, _ = row
    return {
        "symbol": symbol,
        "status": status,
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [],
        "permissions": [],
    }


def binance_app(state: FakeState) -> Starlette:
    """The fake Binance; every request reads `state` afresh."""

    async def gate(request: Request) -> tuple[Response | None, dict[str, str]]:
        """Location, ban, weight: an early answer, or the weight header for the real one."""
        own = state_of(state)
        if own.restricted:
            return error(451, 0, RESTRICTED), {}
        now = time.monotonic()
        with state.lock:
            if own.banned_until > now:
                ban_left = str(int(own.banned_until - now) + 1)
                until = int((time.time() + own.banned_until - now) * 1000)
                message = (
                    f"Way too much request weight used; IP banned until {until}. "
                    "Please use WebSocket Streams for live updates to avoid bans."
                )
                return error(418, -1003, message, {"retry-after": ban_left}), {}
            used = own.used(now)
            weight = WEIGHTS.get(request.url.path, 1)
            if request.url.path.endswith("ticker/24hr") and "symbol" in request.query_params:
                weight = 2
            if used + weight > own.weight_limit:
                wait = int(own.spent[0][0] + 60 - now) + 1 if own.spent else 60
                if own.warned:  # 429s ignored: a ban, for twice the wait
                    own.banned_until = now + 2 * wait
                    return await gate(request)
                own.warned = True
                message = (
                    f"Too much request weight used; current limit is {own.weight_limit} request "
                    "weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid "
                    "polling the API."
                )
                headers = {"retry-after": str(wait), "x-mbx-used-weight-1m": str(used)}
                return error(429, -1003, message, headers), {}
            own.spend(weight, now)
            return None, {"x-mbx-used-weight-1m": str(used + weight)}

    async def shared_fault() -> Response | None:
        fault = state.take_fault(VENDOR)
        if fault is None:
            return None
        if fault.kind == "rate_limit":
            headers = {"retry-after": str(fault.retry_after or 1)}
            return error(429, -1003, "Too much request weight used.", headers)
        if fault.kind == "server_error":
            return error(fault.status or 500, -1000, "An unknown error occurred.")
        if fault.kind == "html":
            return html_page(fault, "api.binance.com")
        if fault.kind in ("slow", "timeout"):
            await delay(fault)
        if fault.kind == "truncated":
            return truncated(b'[{"symbol":"ETHBTC","priceChange":"-0.0005')
        return None

    async def ticker(request: Request) -> Response:
        state.record(VENDOR, request)
        early = await shared_fault()
        if early is not None:
            return early
        refused, headers = await gate(request)
        if refused is not None:
            return refused
        snapshot = market(state.universe)
        close_ms = int(snapshot.clock.timestamp() * 1000)
        items = [ticker_item(row, close_ms) for row in symbols(snapshot)]
        wanted = request.query_params.get("symbol")
        if wanted is not None:
            found = next((i for i in items if i["symbol"] == wanted), None)
            if found is None:
                return error(400, -1121, "Invalid symbol.", headers)
            return json_response(found, 200, headers)
        body = with_extra_items(
            orjson.dumps(drifted(items, state.drifts(VENDOR))), state.extra_items.get(VENDOR, [])
        )
        return Response(body, media_type="application/json", headers=headers)

    async def exchange_info(request: Request) -> Response:
        state.record(VENDOR, request)
        refused, headers = await gate(request)
        if refused is not None:
            return refused
        snapshot = market(state.universe)
        body = {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": state_of(state).weight_limit,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": [symbol_item(row) for row in symbols(snapshot)],
        }
        return json_response(body, 200, headers)

    async def ping(request: Request) -> Response:
        state.record(VENDOR, request)
        refused, headers = await gate(request)
        return refused if refused is not None else json_response({}, 200, headers)

    return Starlette(
        routes=[
            Route("/api/v3/ticker/24hr", ticker),
            Route("/api/v3/exchangeInfo", exchange_info),
            Route("/api/v3/ping", ping),
            *admin_routes(state),
        ]
    )


def settings(state: FakeState, url: str) -> dict[str, Any]:
    return {"binance_base_url": url}


FAKE = FakeVendor(VENDOR, binance_app, settings=settings)
