"""A fake of CoinGecko's API v3 (`/ping`, `/coins/markets`), served under `/api/v3`.

Plans, keys, errors and limits follow `shared/upstream-specs/FACTS.md`: the base URL to give a
client is `{server.url}/api/v3`, whichever plan the fake plays (the plan picks the host upstream).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kasparro.fakes.faults import (
    FakeState,
    Fault,
    Vendor,
    admin_routes,
    delay,
    drifted,
    html_page,
    json_response,
    page_latency,
    truncated,
    with_extra_items,
)

VENDOR: Vendor = "coingecko"
PREFIX = "/api/v3"
RATE_LIMIT_MESSAGE = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits."
)
KEY_MISSING_MESSAGE = (
    "API Key Missing. Please make sure you're using the right authentication method. "
    "For Pro API, please visit: https://docs.coingecko.com/reference/authentication. "
    "For Public/Demo API, please visit: https://docs.coingecko.com/v3.0.1/reference/authentication"
)
# 10010: a non-pro key on the public/demo host; 10011: a demo (or unknown) key on the pro host.
WRONG_HOST_MESSAGES = {
    10010: (
        "If you are using Pro API key, please change your root URL from api.coingecko.com to "
        "pro-api.coingecko.com Please refer here for more details: "
        "https://docs.coingecko.com/reference/introduction"
    ),
    10011: (
        "If you are using Demo API key, please change your root URL from pro-api.coingecko.com "
        "to api.coingecko.com Please refer here for more details: "
        "https://docs.coingecko.com/v3.0.1/reference/introduction"
    ),
}
# Fixed conversion rates for the vs currencies the fake knows (all data is kept in USD).
VS_CURRENCIES: dict[str, float] = {
    "usd": 1.0,
    "eur": 0.86,
    "gbp": 0.74,
    "jpy": 156.0,
    "btc": 1 / 91357,
    "eth": 1 / 3107.53,
}
_MONEY_FIELDS = (
    "current_price",
    "market_cap",
    "fully_diluted_valuation",
    "total_volume",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "market_cap_change_24h",
    "ath",
    "atl",
)
ORDERS = ("market_cap_desc", "market_cap_asc", "volume_desc", "volume_asc", "id_asc", "id_desc")


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def rate_limited(retry_after: int) -> Response:
    return json_response(
        {"status": {"error_code": 429, "error_message": RATE_LIMIT_MESSAGE}},
        429,
        {"retry-after": str(retry_after), "server": "cloudflare"},
    )


def key_missing() -> Response:
    return json_response(
        {
            "status": {
                "timestamp": _timestamp(),
                "error_code": 10002,
                "error_message": KEY_MISSING_MESSAGE,
            }
        },
        401,
    )


def wrong_host(code: int) -> Response:
    return json_response(
        {
            "timestamp": _timestamp(),
            "error_code": code,
            "status": {"error_message": WRONG_HOST_MESSAGES[code]},
        },
        400,
    )


def check_key(state: FakeState, request: Request) -> Response | None:
    """The plan's key rules; None when the request may go on."""
    headers, query = request.headers, request.query_params
    demo = headers.get("x-cg-demo-api-key") or query.get("x_cg_demo_api_key")
    pro = headers.get("x-cg-pro-api-key") or query.get("x_cg_pro_api_key")

    def known(key: str) -> bool:
        return state.coingecko_key is None or key == state.coingecko_key

    if state.coingecko_plan == "pro":
        if pro and known(pro):
            return None
        if pro or demo:
            return wrong_host(10011)
        return key_missing()
    # The public/demo host: a pro key, or a key it does not know, may belong on the pro host.
    if pro or (demo and not known(demo)):
        return wrong_host(10010)
    if state.coingecko_plan == "demo" and not demo:
        return key_missing()
    return None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _convert(item: dict[str, Any], rate: float) -> dict[str, Any]:
    out = dict(item)
    for key in _MONEY_FIELDS:
        value = out.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(f"{value * rate:.6g}")
    return out


def _volume_key(item: dict[str, Any]) -> float:
    value = item.get("total_volume")
    return float(value) if isinstance(value, int | float) else -1.0


class _Orders:
    """The universe's items in each order, cached per snapshot."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self._cache: dict[tuple[int, str], list[dict[str, Any]]] = {}

    def items(self, order: str) -> list[dict[str, Any]]:
        universe = self.state.universe
        with self.state.lock:
            base = universe.coingecko_items()
            if order == "market_cap_desc":
                return base
            key = (universe.snapshot, order)
            cached = self._cache.get(key)
            if cached is None:
                self._cache = {k: v for k, v in self._cache.items() if k[0] == universe.snapshot}
                if order == "market_cap_asc":
                    cached = base[::-1]
                elif order.startswith("volume_"):
                    cached = sorted(base, key=_volume_key, reverse=order == "volume_desc")
                else:
                    cached = sorted(base, key=lambda i: str(i["id"]), reverse=order == "id_desc")
                self._cache[key] = cached
            return cached


async def _fault_response(fault: Fault | None, body: bytes | None = None) -> Response | None:
    """The response a one-shot fault answers with, or None to answer normally (after a delay)."""
    if fault is None:
        return None
    if fault.kind == "rate_limit":
        return rate_limited(fault.retry_after if fault.retry_after is not None else 1)
    if fault.kind == "server_error":
        body_500 = {"status": {"error_code": 500, "error_message": "Internal Server Error"}}
        return json_response(body_500, fault.status or 500)
    if fault.kind == "html":
        return html_page(fault, "api.coingecko.com")
    if fault.kind in ("slow", "timeout"):
        await delay(fault)
    return None


def coingecko_app(state: FakeState) -> Starlette:
    """The fake CoinGecko; every request reads `state` afresh, so tests can change it live."""
    orders = _Orders(state)

    async def ping(request: Request) -> Response:
        state.record(VENDOR, request)
        denied = check_key(state, request)
        if denied is not None:
            return denied
        return json_response({"gecko_says": "(V3) To the Moon!"})

    async def markets(request: Request) -> Response:
        state.record(VENDOR, request)
        query = request.query_params
        page = max(1, _int(query.get("page"), 1))
        fault = state.take_fault(VENDOR, page)
        early = await _fault_response(fault)
        if early is not None:
            return early
        denied = check_key(state, request)
        if denied is not None:
            return denied
        key = request.headers.get("x-cg-pro-api-key") or request.headers.get("x-cg-demo-api-key")
        wait = state.over_minute_limit(VENDOR, state.coingecko_rate_limit, key)
        if wait is not None:
            return rate_limited(wait)
        await page_latency(state)
        vs_currency = query.get("vs_currency")
        if not vs_currency:
            return json_response({"error": "Missing parameter vs_currency"}, 422)
        rate = VS_CURRENCIES.get(vs_currency.lower())
        if rate is None:
            return json_response({"error": "invalid vs_currency"}, 400)
        order = query.get("order") or "market_cap_desc"
        if order not in ORDERS:
            return json_response({"error": "invalid order"}, 400)
        per_page = min(250, max(1, _int(query.get("per_page"), 100)))
        items = orders.items(order)
        ids = query.get("ids")
        if ids:
            wanted = {i.strip() for i in ids.split(",") if i.strip()}
            items = [item for item in items if item["id"] in wanted]
        chunk = items[(page - 1) * per_page : page * per_page]
        if rate != 1.0:
            chunk = [_convert(item, rate) for item in chunk]
        chunk = drifted(chunk, state.drifts(VENDOR, page))
        body = orjson.dumps(chunk)
        if len(chunk) < per_page and not ids:  # the last page carries the extra items
            body = with_extra_items(body, state.extra_items.get(VENDOR, []))
        if fault is not None and fault.kind == "truncated":
            return truncated(body)
        return Response(body, media_type="application/json")

    routes = [
        Route(f"{PREFIX}/ping", ping),
        Route(f"{PREFIX}/coins/markets", markets),
        *admin_routes(state),
    ]
    return Starlette(routes=routes)
