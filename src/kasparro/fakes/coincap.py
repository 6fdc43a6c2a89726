"""A fake of CoinCap 3.0 (`/assets`, `/assets/{id}`), served under `/v3`.

Built from the vendor's documentation (coincapapi.mintlify.app: the assets reference, "Codes and
Error Responses"; shared/upstream-specs/FACTS.md) and the real responses recorded in tests/samples/
(coincap_v2-assets_mr-pmillz-coinmon-go_2021-10-27.json: the item shape, every amount a string;
coincap_v2-assets_deprecation-notice_x-cmd-x-cmd_2025-04-16.json: the retired host's notice, served
at `/v2/assets`). What it plays:

- the key as `Authorization: Bearer <key>` or `apiKey=<key>`: none or a wrong one is a 401;
- `limit` (default 100, at most 2,000: beyond is a 400 "limit exceeds 2000") and `offset` (items
  skipped), `ids` and `search`;
- `{"data": [...], "timestamp": <Unix ms>}`, amounts as strings with 18 decimals and the binary
  noise 3.0 shows (`"87711.199999999997089617"`), `rank` a string, `tokens` an object;
- 404 for an unknown asset, 429 over the per-minute limit (no `Retry-After`: none documented).

Error bodies are not recorded anywhere public: they are `{"error": "<the documented text>"}`, as
CoinCap 2.0 answered (`{"error": "limit exceeds 2000"}` is quoted by its clients).
"""

from __future__ import annotations

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

VENDOR: Vendor = "coincap"
PREFIX = "/v3"
MAX_LIMIT = 2000
RETIRED_NOTICE = (
    "We are deprecating this version of the CoinCap API on March 31, 2025. Sign up for our new "
    "V3 API at https://pro.coincap.io/dashboard"
)


def amount(value: Any) -> str | None:
    """A number as 3.0 writes it: a string with 18 decimals (binary noise included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{value:.18f}"


def asset_item(coin: dict[str, Any], rank: int) -> dict[str, Any]:
    """A CoinGecko `/coins/markets` item of the universe, as CoinCap's `/assets` shows it."""
    symbol = coin.get("symbol")
    change = coin.get("price_change_percentage_24h")
    return {
        "id": coin["id"],
        "rank": str(rank),
        "symbol": symbol.upper() if isinstance(symbol, str) else symbol,
        "name": coin.get("name"),
        "supply": amount(coin.get("circulating_supply")),
        "maxSupply": amount(coin.get("max_supply")),
        "marketCapUsd": amount(coin.get("market_cap")),
        "volumeUsd24Hr": amount(coin.get("total_volume")),
        "priceUsd": amount(coin.get("current_price")),
        "changePercent24Hr": str(change) if isinstance(change, int | float) else None,
        "vwap24Hr": amount(coin.get("current_price")),
        "explorer": None,
        "tokens": {},
    }


def error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def check_key(state: FakeState, request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    key = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    key = key or request.query_params.get("apiKey", "")
    if not key or (state.coincap_key is not None and key != state.coincap_key):
        return error(401, "You did not provide a valid API key.")
    return None


async def _fault_response(fault: Fault | None) -> Response | None:
    if fault is None:
        return None
    if fault.kind == "rate_limit":
        headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
        return json_response({"error": "Too many requests"}, 429, headers)
    if fault.kind == "server_error":
        return error(fault.status or 500, "Internal Server Error")
    if fault.kind == "html":
        return html_page(fault, "rest.coincap.io")
    if fault.kind in ("slow", "timeout"):
        await delay(fault)
    return None


def _int(value: str | None, default: int) -> int | None:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return None


def coincap_app(state: FakeState) -> Starlette:
    """The fake CoinCap; every request reads `state` afresh."""

    def assets_now() -> tuple[list[dict[str, Any]], int]:
        universe = state.universe
        coins = universe.coingecko_items()
        stamp = int(universe.clock.timestamp() * 1000)
        return [asset_item(c, rank) for rank, c in enumerate(coins, start=1)], stamp

    async def assets(request: Request) -> Response:
        state.record(VENDOR, request)
        query = request.query_params
        limit, offset = _int(query.get("limit"), 100), _int(query.get("offset"), 0)
        page = offset // limit + 1 if limit and offset is not None and limit > 0 else None
        fault = state.take_fault(VENDOR, page)
        early = await _fault_response(fault)
        if early is not None:
            return early
        denied = check_key(state, request)
        if denied is not None:
            return denied
        key = request.headers.get("authorization")
        if state.over_minute_limit(VENDOR, state.coincap_rate_limit, key) is not None:
            return error(429, "Too many requests")
        await page_latency(state)
        if limit is None or limit < 1 or offset is None or offset < 0:
            return error(400, "limit and offset must be non-negative integers")
        if limit > MAX_LIMIT:
            return error(400, "limit exceeds 2000")
        items, stamp = assets_now()
        if query.get("ids"):
            wanted = set(query["ids"].split(","))
            items = [i for i in items if i["id"] in wanted]
        if query.get("search"):
            term = query["search"].lower()
            items = [i for i in items if term in f"{i['id']} {i['symbol']} {i['name']}".lower()]
        chunk = items[offset : offset + limit]
        data = orjson.dumps(drifted(chunk, state.drifts(VENDOR, page)))
        if len(chunk) < limit:  # the last page carries the extra (hostile) items
            data = with_extra_items(data, state.extra_items.get(VENDOR, []))
        body = b'{"data":' + data + b',"timestamp":' + str(stamp).encode() + b"}"
        if fault is not None and fault.kind == "truncated":
            return truncated(body)
        return Response(body, media_type="application/json")

    async def one_asset(request: Request) -> Response:
        state.record(VENDOR, request)
        denied = check_key(state, request)
        if denied is not None:
            return denied
        items, stamp = assets_now()
        wanted = request.path_params["asset_id"]
        found = next((i for i in items if i["id"] == wanted), None)
        if found is None:
            return error(404, f"{wanted} not found")
        return json_response({"timestamp": stamp, "data": found})

    async def retired(request: Request) -> Response:
        state.record(VENDOR, request)
        universe = state.universe
        stamp = int(universe.clock.timestamp() * 1000)
        return json_response({"data": {"message": RETIRED_NOTICE}, "timestamp": stamp})

    routes = [
        Route(f"{PREFIX}/assets", assets),
        Route(f"{PREFIX}/assets/{{asset_id}}", one_asset),
        Route("/v2/assets", retired),
        *admin_routes(state),
    ]
    return Starlette(routes=routes)
