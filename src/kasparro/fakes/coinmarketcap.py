"""A fake of CoinMarketCap's Pro API `/v1/cryptocurrency/listings/latest`, served at the root.

Built from the vendor's documentation (coinmarketcap.com/api/documentation: Authentication,
Standards and Conventions, Rate limits and troubleshooting / errors, and the listings/latest
reference, as summarised in shared/upstream-specs/FACTS.md) and from the real response recorded
in tests/samples/coinmarketcap_listings-latest_Visyntro-cryptotracker_2024-09-17.json (its item
shape and field order). What it plays:

- the key in `X-CMC_PRO_API_KEY` (or the `CMC_PRO_API_KEY` query parameter): none is 401 with
  error 1002 "API key missing.", a wrong one 401 with 1001 "This API Key is invalid.";
- `start` (1-based) and `limit` (1-5000; beyond: 400 with error 400), `convert=USD`;
- credits: 1 per 200 coins returned, reported in `status.credit_count` (errors cost 0); a used-up
  monthly allowance is 429 with 1010, the per-minute limit 429 with 1008 (no `Retry-After`: CMC
  documents none);
- the envelope `{"status": {...}, "data": [...]}`, `total_count` the size of the listing;
- faults: `server_error` with `status=200` answers a non-zero `error_code` with HTTP 200, which
  CMC's error guide warns about.

Coins are the universe's (the same coins the other fakes list), under stable integer ids (the
real ones for coins in the recorded sample).
"""

from __future__ import annotations

import zlib
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

VENDOR: Vendor = "coinmarketcap"
PATH = "/v1/cryptocurrency/listings/latest"
MAX_LIMIT = 5000
# The ids of the coins in the recorded sample (permanent ids; slug -> id).
KNOWN_IDS = {
    "bitcoin": 1,
    "ethereum": 1027,
    "tether": 825,
    "binancecoin": 1839,
    "solana": 5426,
    "usd-coin": 3408,
    "ripple": 52,
    "dogecoin": 74,
    "the-open-network": 11419,
    "tron": 1958,
    "cardano": 2010,
    "avalanche-2": 5805,
    "shiba-inu": 5994,
    "chainlink": 1975,
    "polkadot": 6636,
    "bitcoin-cash": 1831,
    "dai": 4943,
    "leo-token": 3957,
    "litecoin": 2,
    "near": 6535,
}
MESSAGES = {
    1001: "This API Key is invalid.",
    1002: "API key missing.",
    1008: "You've exceeded your API Key's HTTP request rate limit. Rate limits reset every minute.",
    1010: "You've exceeded your API Key's monthly rate limit.",
    500: "An internal server error occurred.",
}


def cmc_ids(slugs: list[str]) -> dict[str, int]:
    """Stable, distinct integer ids: the real one where known, else one above the real ids'
    range, in the order of the slugs (a universe's coins never change, only their prices)."""
    ordered = sorted(set(slugs) - KNOWN_IDS.keys())
    return {**{slug: 40_000 + n for n, slug in enumerate(ordered)}, **KNOWN_IDS}


def credits_for(coins: int) -> int:
    return max(1, -(-coins // 200))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status(code: int = 0, message: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "timestamp": _now(),
        "error_code": code,
        "error_message": message,
        "elapsed": 0 if code else 12,
        "credit_count": extra.pop("credit_count", 0),
        "notice": None,
        **extra,
    }


def error(http_status: int, code: int, message: str | None = None) -> Response:
    body = {"status": status(code, message or MESSAGES.get(code, "Bad request"))}
    return json_response(body, http_status)


def listing_item(coin: dict[str, Any], cmc_id: int, rank: int, total_cap: float) -> dict[str, Any]:
    """A CoinGecko `/coins/markets` item of the universe, as CMC's listing shows that coin."""
    slug = str(coin["id"])
    cap = coin.get("market_cap")
    stamp = coin.get("last_updated")
    symbol = coin.get("symbol")
    return {
        "id": cmc_id,
        "name": coin.get("name"),
        "symbol": symbol.upper() if isinstance(symbol, str) else symbol,
        "slug": slug,
        "num_market_pairs": 1 + zlib.crc32(slug.encode()) % 900,
        "date_added": "2020-01-01T00:00:00.000Z",
        "tags": [],
        "max_supply": coin.get("max_supply"),
        "circulating_supply": coin.get("circulating_supply"),
        "total_supply": coin.get("total_supply"),
        "infinite_supply": coin.get("max_supply") is None,
        "platform": None,
        "cmc_rank": rank,
        "self_reported_circulating_supply": None,
        "self_reported_market_cap": None,
        "tvl_ratio": None,
        "last_updated": stamp,
        "quote": {
            "USD": {
                "price": coin.get("current_price"),
                "volume_24h": coin.get("total_volume"),
                "volume_change_24h": 0.0,
                "percent_change_1h": 0.0,
                "percent_change_24h": coin.get("price_change_percentage_24h"),
                "percent_change_7d": 0.0,
                "percent_change_30d": 0.0,
                "percent_change_60d": 0.0,
                "percent_change_90d": 0.0,
                "market_cap": cap,
                "market_cap_dominance": (
                    round(cap / total_cap * 100, 4)
                    if isinstance(cap, int | float) and total_cap
                    else None
                ),
                "fully_diluted_market_cap": coin.get("fully_diluted_valuation"),
                "tvl": None,
                "last_updated": stamp,
            }
        },
    }


class _Listing:
    """The universe's coins as CMC lists them, built once per snapshot."""

    def __init__(self, state: FakeState) -> None:
        self.state = state
        self._cache: tuple[int, list[dict[str, Any]]] | None = None
        self._ids: dict[str, int] | None = None

    def items(self) -> list[dict[str, Any]]:
        universe = self.state.universe
        with self.state.lock:
            if self._cache is None or self._cache[0] != universe.snapshot:
                coins = universe.coingecko_items()
                if self._ids is None:
                    self._ids = cmc_ids([str(c["id"]) for c in coins])
                ids = self._ids
                total = sum(
                    c["market_cap"] for c in coins if isinstance(c.get("market_cap"), int | float)
                )
                listed = [
                    listing_item(c, ids[str(c["id"])], rank, total)
                    for rank, c in enumerate(coins, start=1)
                ]
                self._cache = (universe.snapshot, listed)
            return self._cache[1]


def _int(value: str | None, default: int) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return None


async def _fault_response(fault: Fault | None) -> Response | None:
    if fault is None:
        return None
    if fault.kind == "rate_limit":
        headers = {"retry-after": str(fault.retry_after)} if fault.retry_after is not None else {}
        body = {"status": status(1008, MESSAGES[1008])}
        return json_response(body, 429, headers)
    if fault.kind == "server_error":
        return error(fault.status or 500, 500)
    if fault.kind == "html":
        return html_page(fault, "pro-api.coinmarketcap.com")
    if fault.kind in ("slow", "timeout"):
        await delay(fault)
    return None


def check_key(state: FakeState, request: Request) -> Response | None:
    key = request.headers.get("x-cmc_pro_api_key") or request.query_params.get("CMC_PRO_API_KEY")
    if not key:
        return error(401, 1002)
    if state.coinmarketcap_key is not None and key != state.coinmarketcap_key:
        return error(401, 1001)
    return None


def coinmarketcap_app(state: FakeState) -> Starlette:
    """The fake CoinMarketCap; every request reads `state` afresh."""
    listing = _Listing(state)

    async def listings(request: Request) -> Response:
        state.record(VENDOR, request)
        query = request.query_params
        start, limit = _int(query.get("start"), 1), _int(query.get("limit"), 100)
        page = (start - 1) // limit + 1 if start and limit and start > 0 and limit > 0 else None
        fault = state.take_fault(VENDOR, page)
        early = await _fault_response(fault)
        if early is not None:
            return early
        denied = check_key(state, request)
        if denied is not None:
            return denied
        key = request.headers.get("x-cmc_pro_api_key")
        if state.over_minute_limit(VENDOR, state.coinmarketcap_rate_limit, key) is not None:
            return error(429, 1008)
        await page_latency(state)
        if start is None or start < 1:
            return error(400, 400, '"start" must be larger than or equal to 1')
        if limit is None or not 1 <= limit <= MAX_LIMIT:
            return error(400, 400, f'"limit" must be less than or equal to {MAX_LIMIT}')
        convert = query.get("convert", "USD")
        if convert.upper() != "USD":
            return error(400, 400, f'Invalid value for "convert": "{convert}"')
        items = listing.items()
        chunk = items[start - 1 : start - 1 + limit]
        cost = credits_for(len(chunk))
        with state.lock:
            allowance = state.coinmarketcap_credits
            if allowance is not None and state.coinmarketcap_credits_used + cost > allowance:
                return error(429, 1010)
            state.coinmarketcap_credits_used += cost
        data = orjson.dumps(drifted(chunk, state.drifts(VENDOR, page)))
        if len(chunk) < limit:  # the last page carries the extra (hostile) items
            data = with_extra_items(data, state.extra_items.get(VENDOR, []))
        head = status(credit_count=cost, total_count=len(items))
        body = b'{"status":' + orjson.dumps(head) + b',"data":' + data + b"}"
        if fault is not None and fault.kind == "truncated":
            return truncated(body)
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route(PATH, listings), *admin_routes(state)])
