"""A fake of CoinPaprika's API (`/tickers`, `/tickers/{id}`, `/coins`), served under `/v1`.

Errors are `{"error": "..."}` with the vendor's statuses (FACTS.md): 400, 402 (plan or quota),
403 (bad key), 404 (`id not found`), 429 (`you have reached maximum request limit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
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
    truncated,
    with_extra_items,
)

VENDOR: Vendor = "coinpaprika"
PREFIX = "/v1"
FREE_PLAN_LIMIT = 2000
CHUNK_BYTES = 1 << 20
RATE_LIMIT_MESSAGE = "you have reached maximum request limit"
QUOTA_MESSAGE = "monthly request limit exceeded, upgrade your plan at https://coinpaprika.com/api"
MISSING_KEY_MESSAGE = "missing API key in the Authorization header"
INVALID_KEY_MESSAGE = "invalid API key"
NOT_FOUND_MESSAGE = "id not found"


def error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), CHUNK_BYTES):
        yield body[start : start + CHUNK_BYTES]


def body_response(body: bytes) -> Response:
    """Small bodies in one piece, large ones streamed in 1 MiB chunks."""
    if len(body) <= CHUNK_BYTES:
        return Response(body, media_type="application/json")
    return StreamingResponse(
        _chunks(body),
        media_type="application/json",
        headers={"content-length": str(len(body))},
    )


async def _fault_response(fault: Fault | None) -> Response | None:
    if fault is None:
        return None
    if fault.kind == "rate_limit":
        headers = None if fault.retry_after is None else {"retry-after": str(fault.retry_after)}
        return error(RATE_LIMIT_MESSAGE, 429, headers)
    if fault.kind == "server_error":
        return error("internal server error", fault.status or 500)
    if fault.kind == "html":
        return html_page(fault, "api.coinpaprika.com")
    if fault.kind in ("slow", "timeout"):
        await delay(fault)
    return None


def _gate(state: FakeState, request: Request) -> Response | None:
    """Key, quota and rate limit, in that order; None when the request may go on."""
    if state.coinpaprika_key is not None:
        sent = request.headers.get("authorization")
        if not sent:
            return error(MISSING_KEY_MESSAGE, 403)
        if sent != state.coinpaprika_key:
            return error(INVALID_KEY_MESSAGE, 403)
    if state.coinpaprika_quota is not None:
        with state.lock:
            used = sum(n for path, n in state.requests.items() if path.startswith(VENDOR))
        if used > state.coinpaprika_quota:
            return error(QUOTA_MESSAGE, 402)
    if state.over_limit(VENDOR, state.coinpaprika_rate_limit, 1) is not None:
        return error(RATE_LIMIT_MESSAGE, 429)
    quotes = request.query_params.get("quotes", "USD")
    wanted = [q.strip().upper() for q in quotes.split(",") if q.strip()]
    if len(wanted) > 3:
        return error("maximum 3 quotes are allowed", 400)
    if any(q != "USD" for q in wanted):
        return error(f"invalid quotes: {quotes} (the fake serves USD only)", 400)
    return None


def coinpaprika_app(state: FakeState) -> Starlette:
    """The fake CoinPaprika; every request reads `state` afresh, so tests can change it live."""

    def visible() -> list[dict[str, Any]]:
        items = state.universe.coinpaprika_items()
        if state.coinpaprika_plan == "free":
            items = [
                {k: v for k, v in item.items() if k != "circulating_supply"}
                for item in items[:FREE_PLAN_LIMIT]
            ]
        return items

    async def tickers(request: Request) -> Response:
        state.record(VENDOR, request)
        fault = state.take_fault(VENDOR)
        early = await _fault_response(fault)
        if early is not None:
            return early
        denied = _gate(state, request)
        if denied is not None:
            return denied
        drifts = state.drifts(VENDOR)
        if drifts:
            body = orjson.dumps(drifted(visible(), drifts))
        else:
            free = state.coinpaprika_plan == "free"
            body = state.universe.coinpaprika_bytes(
                free_plan=free, limit=FREE_PLAN_LIMIT if free else None
            )
        body = with_extra_items(body, state.extra_items.get(VENDOR, []))
        if fault is not None and fault.kind == "truncated":
            return truncated(body)
        return body_response(body)

    async def ticker(request: Request) -> Response:
        state.record(VENDOR, request)
        fault = state.take_fault(VENDOR)
        early = await _fault_response(fault)
        if early is not None:
            return early
        denied = _gate(state, request)
        if denied is not None:
            return denied
        coin_id = request.path_params["coin_id"]
        found = next((item for item in visible() if item["id"] == coin_id), None)
        if found is None:
            return error(NOT_FOUND_MESSAGE, 404)
        body = orjson.dumps(drifted([found], state.drifts(VENDOR))[0])
        if fault is not None and fault.kind == "truncated":
            return truncated(body)
        return Response(body, media_type="application/json")

    async def coins(request: Request) -> Response:
        state.record(VENDOR, request)
        denied = _gate(state, request)
        if denied is not None:
            return denied
        listing = [
            {
                "id": item["id"],
                "name": item["name"],
                "symbol": item["symbol"],
                "rank": item["rank"],
                "is_new": False,
                "is_active": True,
                "type": "coin",
            }
            for item in state.universe.coinpaprika_items()
        ]
        return json_response(listing)

    routes = [
        Route(f"{PREFIX}/tickers", tickers),
        Route(f"{PREFIX}/tickers/{{coin_id}}", ticker),
        Route(f"{PREFIX}/coins", coins),
        *admin_routes(state),
    ]
    return Starlette(routes=routes)
