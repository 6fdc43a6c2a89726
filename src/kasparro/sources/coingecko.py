"""CoinGecko `/coins/markets`: paged, keyed by plan; one page is one batch and one checkpoint."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from kasparro.config import COINGECKO_KEY_HEADERS, Settings
from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.sources.base import (
    BadPayload,
    Batch,
    Check,
    Cursor,
    Source,
    SourceError,
    UpstreamAuthError,
    number_field,
    validate,
)
from kasparro.sources.http import (
    RetryAfter,
    RetryPolicy,
    UpstreamClient,
    decode_error_body,
    generic_unavailable,
    rate_limiter,
    retry_after_seconds,
    snippet,
)
from kasparro.sources.timestamps import parse_utc

NAME = "coingecko"
# Error codes that no retry can fix: key missing (10002), plan and host mismatch (10010, 10011),
# endpoint outside the plan (10005), blocked by the CDN firewall (1020).
_FATAL_CODES = {10002, 10005, 10010, 10011, 1020}


def classify(response: httpx.Response) -> SourceError | None:
    """CoinGecko's three error shapes: `status.error_code`, top-level `error_code`, or not JSON."""
    if response.is_success:
        return None
    body = decode_error_body(response)
    if not isinstance(body, dict):
        return generic_unavailable(NAME, response)
    nested = body.get("status")
    status: dict[str, Any] = nested if isinstance(nested, dict) else {}
    code = body.get("error_code", status.get("error_code"))
    message = status.get("error_message") or body.get("error") or snippet(response)
    if response.status_code == 429 or code == 429:
        return RetryAfter(
            f"{NAME}: rate limited (HTTP 429): {message}", retry_after_seconds(response)
        )
    if response.status_code == 401 or code in _FATAL_CODES:
        return UpstreamAuthError(
            f"{NAME}: HTTP {response.status_code}, error {code}: {message} "
            "(check COINGECKO_API_PLAN and COINGECKO_API_KEY)"
        )
    if response.status_code == 403:  # "temporarily unavailable": an outage, not a verdict
        return RetryAfter(f"{NAME}: HTTP 403: {message}", retry_after_seconds(response))
    if response.status_code == 400:
        return BadPayload(f"{NAME}: HTTP 400, error {code}: {message}")
    return generic_unavailable(NAME, response)


def normalize(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One `/coins/markets` item to the unified model (pure)."""
    item = raw.payload
    try:
        fields = {
            "source_asset_id": item.get("id"),
            "symbol": item.get("symbol"),
            "name": item.get("name"),
            "price_usd": number_field(item, "current_price"),
            "market_cap_usd": number_field(item, "market_cap"),
            "volume_24h_usd": number_field(item, "total_volume"),
            "observed_at": parse_utc(item.get("last_updated")),
        }
    except ValueError as exc:
        return Rejection(raw=raw, reason=str(exc), source_asset_id=_id_of(item))
    return validate(raw, fields)


def _id_of(item: Mapping[str, Any]) -> str | None:
    value = item.get("id")
    return value if isinstance(value, str) and value else None


class CoinGeckoSource(Source):
    name = NAME

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        plan = settings.coingecko_api_plan
        key = settings.coingecko_api_key.get_secret_value() if settings.coingecko_api_key else ""
        header = COINGECKO_KEY_HEADERS[plan]
        if header and not key:
            raise UpstreamAuthError(
                f"{NAME}: COINGECKO_API_PLAN={plan.value} needs COINGECKO_API_KEY to be set"
            )
        self._per_page = settings.coingecko_per_page
        self._page_cap = settings.coingecko_page_cap
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=settings.coingecko_root,
            classify=classify,
            headers={header: key} if header else None,
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(settings.coingecko_calls_per_minute, 60),
            secrets=(key,),
            transport=transport,
        )

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        page = int(cursor.get("next_page", 1)) if cursor else 1
        if page < 1 or (self._page_cap is not None and page > self._page_cap):
            page = 1
        while True:
            items = self._fetch_page(page)
            last = len(items) < self._per_page or page == self._page_cap
            next_cursor = (
                {"next_page": 1, "pages_in_last_crawl": page} if last else {"next_page": page + 1}
            )
            yield Batch(
                records=[RawRecord.of(NAME, item) for item in items],
                cursor=next_cursor,
                label=f"page {page}",
            )
            if last:
                return
            page += 1

    def _fetch_page(self, page: int) -> list[dict[str, Any]]:
        payload = self._client.get_json(
            "/coins/markets",
            {
                "vs_currency": "usd",
                "order": "market_cap_desc",
                "per_page": self._per_page,
                "page": page,
            },
        )
        if not isinstance(payload, list) or not all(isinstance(i, dict) for i in payload):
            raise BadPayload(
                f"{NAME}: page {page}: expected a JSON array of objects, "
                f"got {type(payload).__name__}"
            )
        return payload

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize(raw)

    def check(self) -> Check:
        """`/ping`: the cheapest call, refused like any other when the plan or key is wrong."""
        try:
            payload = self._client.get_json("/ping")
        except SourceError as exc:
            return Check("error", str(exc))
        if not isinstance(payload, dict):
            return Check("error", f"{NAME}: /ping answered a {type(payload).__name__}")
        return Check("ok", "GET /ping answered")

    def close(self) -> None:
        self._client.close()
