"""A fake of OKX's public REST API v5: `/api/v5/market/tickers`, `/api/v5/market/ticker`,
`/api/v5/public/instruments`, `/api/v5/public/time`.

Built from OKX's public documentation (www.okx.com/docs-v5/en/: "Get tickers", "Get ticker",
"Get instruments", their rate limits and response parameters, as mirrored in rosssaunders/coincise
docs/okx/endpoints/private/get_api_v5_market_tickers.md and get_api_v5_public_instruments.md; the
error-code table's `50011` "Rate limit reached" with HTTP 429 as OKX's web3 docs list it, mirrored
in FireNirva/hummingbot-quants-lab scripts/data/okx_docs/dex-api/dex-market-price-error-code.md)
and the real bodies recorded in tests/samples/ (okx_ticker_BTC-USDT_*.json: the item shape, every
number a string, `ts` in milliseconds as a string; okx_error429-rate-limit_*.json: the 429 body,
served as recorded). What it plays:

- the envelope `{"code": "0", "msg": "", "data": [...]}`, compact;
- `instType` missing: 400 code 50014; not SPOT/MARGIN/SWAP/FUTURES/OPTION: 400 code 51000;
  only SPOT has instruments here (the others answer an empty `data`);
- `/market/ticker?instId=` an unknown instrument: HTTP 200 with code 51001, empty `data`;
- 20 requests per 2 seconds per IP (`requests_per_two_seconds`), over it the recorded 429;
- the universe's coins as `BASE-QUOTE` spot pairs in USDT, USDC, EUR and BTC (no USD: the
  global site has none), each instrument `live`; a `suspend`ed instrument with an all-zero
  ticker, a pair in a quote no source converts (TRY), and optionally a live pair with no trade
  in 24 h (`halted_pair`).

Shared faults: `rate_limit` is the recorded 429, `server_error` 503 code 50001, `html` a
Cloudflare page, `truncated`, `slow`, `drift` (on ticker items), extra hostile items appended
to the tickers' `data`. Not confirmed, so not played: OKX's answer to a restricted region, and
the exact `msg` wording of 50001/50014/51000 (written from the docs' table as best known).
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

VENDOR = "okx"
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
OKX_QUOTES = ("USDT", "USDC", "EUR", "BTC")
SUSPENDED = "OLD-USDT"
DAY_MS = 86_400_000
# The body OKX answers with over its limit, as recorded (tests/samples/okx_error429-*.json).
TOO_MANY = {"msg": "Too Many Requests", "code": "50011"}


@dataclass
class OkxFake:
    """What the fake OKX keeps: its per-IP limit and window, and optional oddities."""

    requests_per_two_seconds: int | None = 20
    halted_pair: bool = False  # a live pair with no trade in 24 h (vol24h "0")
    calls: deque[float] = field(default_factory=deque)

    def over_limit(self, now: float) -> bool:
        if self.requests_per_two_seconds is None:
            return False
        while self.calls and self.calls[0] <= now - 2:
            self.calls.popleft()
        if len(self.calls) >= self.requests_per_two_seconds:
            return True
        self.calls.append(now)
        return False


def state_of(state: FakeState) -> OkxFake:
    return own_state(state, VENDOR, OkxFake)


def envelope(data: list[Any], code: str = "0", msg: str = "", status: int = 200) -> Response:
    return json_response({"code": code, "msg": msg, "data": data}, status)


def pairs(snapshot: Market, halted: bool) -> list[tuple[str, str, str, str, float, float]]:
    """(instId, state, base, quote, price in quote, 24 h volume in quote) of every instrument."""
    rows = []
    for coin in snapshot.coins:
        for quote in pair_plan(coin):
            if quote not in OKX_QUOTES or quote not in snapshot.quote_usd:
                continue
            price, volume = in_quote(coin, snapshot.quote_usd[quote])
            rows.append((f"{coin.ticker}-{quote}", "live", coin.ticker, quote, price, volume))
    if snapshot.coins:
        top = snapshot.coins[0]
        rows.append((f"{top.ticker}-TRY", "live", top.ticker, "TRY", top.price_usd * 32, 1e8))
    rows.append((SUSPENDED, "suspend", "OLD", "USDT", 0.0, 0.0))
    if halted:
        rows.append(("HALT-USDT", "live", "HALT", "USDT", 0.5, 0.0))
    return rows


def ticker_item(row: tuple[str, str, str, str, float, float], ts_ms: int) -> dict[str, Any]:
    inst_id, state, _, _, price, volume = row
    traded = state == "live" and volume > 0
    opened = price * 0.99
    places = 8 if price >= 1 else 12  # each pair's own tickSz: small prices get more

    def px(value: float) -> str:
        return decimal(value, places)

    return {
        "instType": "SPOT",
        "instId": inst_id,
        "last": px(price),
        "lastSz": decimal(0.5 if traded else 0.0),
        "askPx": px(price * 1.0001),
        "askSz": decimal(12.0),
        "bidPx": px(price * 0.9999),
        "bidSz": decimal(10.0),
        "open24h": px(opened),
        "high24h": px(price * 1.01),
        "low24h": px(opened * 0.99),
        "volCcy24h": decimal(volume),
        "vol24h": decimal(volume / price if traded and price else 0.0),
        "ts": str(ts_ms if state == "live" else ts_ms - 40 * DAY_MS),
        "sodUtc0": px(opened),
        "sodUtc8": px(opened * 1.001),
    }


def instrument_item(row: tuple[str, str, str, str, float, float]) -> dict[str, Any]:
    inst_id, state, base, quote, _, _ = row
    return {
        "instType": "SPOT",
        "instId": inst_id,
        "uly": "",
        "instFamily": "",
        "baseCcy": base,
        "quoteCcy": quote,
        "settleCcy": "",
        "ctVal": "",
        "ctMult": "",
        "ctValCcy": "",
        "optType": "",
        "stk": "",
        "listTime": "1611907686000",
        "expTime": "",
        "lever": "",
        "tickSz": "0.0001",
        "lotSz": "0.00000001",
        "minSz": "0.00001",
        "ctType": "",
        "alias": "",
        "state": state,
        "ruleType": "normal",
        "maxLmtSz": "9999999999",
        "maxMktSz": "1000000",
        "maxLmtAmt": "20000000",
        "maxMktAmt": "1000000",
    }


def okx_app(state: FakeState) -> Starlette:
    """The fake OKX; every request reads `state` afresh."""

    async def early(request: Request) -> Response | None:
        """The request log, a shared fault, the per-IP limit, and `instType`."""
        state.record(VENDOR, request)
        fault = state.take_fault(VENDOR)
        if fault is not None:
            if fault.kind == "rate_limit":
                return json_response(TOO_MANY, 429)
            if fault.kind == "server_error":
                message = "Service temporarily unavailable. Please try again later."
                return envelope([], "50001", message, fault.status or 503)
            if fault.kind == "html":
                return html_page(fault, "www.okx.com")
            if fault.kind == "truncated":
                return truncated(b'{"code":"0","msg":"","data":[{"instType":"SPOT","instId":"BT')
            if fault.kind in ("slow", "timeout"):
                await delay(fault)
        with state.lock:
            if state_of(state).over_limit(time.monotonic()):
                state.rate_limited[VENDOR] += 1
                return json_response(TOO_MANY, 429)
        return None

    def inst_type_error(request: Request) -> Response | None:
        inst_type = request.query_params.get("instType")
        if not inst_type:
            return envelope([], "50014", "Parameter instType can not be empty", 400)
        if inst_type not in INST_TYPES:
            return envelope([], "51000", "Parameter instType error", 400)
        return None

    def snapshot_rows() -> tuple[list[tuple[str, str, str, str, float, float]], int]:
        snapshot = market(state.universe)
        rows = pairs(snapshot, state_of(state).halted_pair)
        return rows, int(snapshot.clock.timestamp() * 1000)

    async def tickers(request: Request) -> Response:
        refused = await early(request) or inst_type_error(request)
        if refused is not None:
            return refused
        rows, ts_ms = snapshot_rows()
        spot = request.query_params["instType"] == "SPOT"
        items = [ticker_item(row, ts_ms) for row in rows] if spot else []
        data = with_extra_items(
            orjson.dumps(drifted(items, state.drifts(VENDOR))),
            state.extra_items.get(VENDOR, []) if spot else [],
        )
        body = b'{"code":"0","msg":"","data":' + data + b"}"
        return Response(body, media_type="application/json")

    async def ticker(request: Request) -> Response:
        refused = await early(request)
        if refused is not None:
            return refused
        wanted = request.query_params.get("instId")
        if not wanted:
            return envelope([], "50014", "Parameter instId can not be empty", 400)
        rows, ts_ms = snapshot_rows()
        found = [ticker_item(row, ts_ms) for row in rows if row[0] == wanted]
        if not found:
            return envelope([], "51001", "Instrument ID does not exist")
        return envelope(found)

    async def instruments(request: Request) -> Response:
        refused = await early(request) or inst_type_error(request)
        if refused is not None:
            return refused
        rows, _ = snapshot_rows()
        spot = request.query_params["instType"] == "SPOT"
        return envelope([instrument_item(row) for row in rows] if spot else [])

    async def server_time(request: Request) -> Response:
        refused = await early(request)
        return refused or envelope([{"ts": str(int(time.time() * 1000))}])

    return Starlette(
        routes=[
            Route("/api/v5/market/tickers", tickers),
            Route("/api/v5/market/ticker", ticker),
            Route("/api/v5/public/instruments", instruments),
            Route("/api/v5/public/time", server_time),
            *admin_routes(state),
        ]
    )


def settings(state: FakeState, url: str) -> dict[str, Any]:
    return {"okx_base_url": url}


FAKE = FakeVendor(VENDOR, okx_app, settings=settings)
