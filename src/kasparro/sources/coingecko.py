"""CoinGecko `/coins/markets`: paged, keyed by plan; one page is one batch and one checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.quality.expected import Anchor, FieldSpec, spec
from kasparro.sources.base import (
    BadPayload,
    Check,
    SourceError,
    SourceSettings,
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
from kasparro.sources.paging import PagedSource
from kasparro.sources.timestamps import parse_utc

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

NAME = "coingecko"


class CoinGeckoPlan(StrEnum):
    PUBLIC = "public"
    DEMO = "demo"
    PRO = "pro"


ROOTS: dict[CoinGeckoPlan, str] = {
    CoinGeckoPlan.PUBLIC: "https://api.coingecko.com/api/v3",
    CoinGeckoPlan.DEMO: "https://api.coingecko.com/api/v3",
    CoinGeckoPlan.PRO: "https://pro-api.coingecko.com/api/v3",
}
KEY_HEADERS: dict[CoinGeckoPlan, str | None] = {
    CoinGeckoPlan.PUBLIC: None,
    CoinGeckoPlan.DEMO: "x-cg-demo-api-key",
    CoinGeckoPlan.PRO: "x-cg-pro-api-key",
}
# Calls per minute each plan allows (FACTS.md); a full public crawl would take many minutes.
PLAN_RATE_PER_MINUTE: dict[CoinGeckoPlan, float] = {
    CoinGeckoPlan.PUBLIC: 10,
    CoinGeckoPlan.DEMO: 30,
    CoinGeckoPlan.PRO: 500,
}


class CoinGeckoSettings(SourceSettings):
    """`COINGECKO_*`."""

    api_plan: CoinGeckoPlan = CoinGeckoPlan.PUBLIC
    api_key: SecretStr | None = None
    base_url: str | None = None
    per_page: int = Field(default=250, ge=1, le=250)
    max_pages: int | None = Field(default=None, ge=1)
    rate_limit_per_minute: float | None = Field(default=None, gt=0)

    @property
    def root(self) -> str:
        return (self.base_url or ROOTS[self.api_plan]).rstrip("/")

    @property
    def page_cap(self) -> int | None:
        """Pages to crawl: all on pro; the top 1,000 coins on public and demo unless overridden."""
        if self.max_pages is not None:
            return self.max_pages
        if self.api_plan is CoinGeckoPlan.PRO:
            return None
        return max(1, -(-1000 // self.per_page))

    @property
    def calls_per_minute(self) -> float:
        if self.rate_limit_per_minute is not None:
            return self.rate_limit_per_minute
        return PLAN_RATE_PER_MINUTE[self.api_plan]


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


# The `/coins/markets` item (upstream-specs/coingecko-pro-openapi.json, FACTS.md).
NUMBER = spec("number", "null")
EXPECTED_SHAPE: Mapping[str, FieldSpec] = {
    "id": spec("string", role="id", required=True),
    "symbol": spec("string", role="symbol", required=True),
    "name": spec("string", role="name", required=True),
    "image": spec("string"),
    "current_price": spec(
        "number",
        "null",
        role="price",
        required=True,
        anchors=(
            Anchor("between", "low_24h", "high_24h"),
            Anchor("ratio", "market_cap", "circulating_supply"),
        ),
    ),
    "market_cap": spec(
        "number",
        "null",
        role="market_cap",
        anchors=(Anchor("product", "current_price", "circulating_supply"),),
    ),
    "total_volume": spec("number", "null", role="volume"),
    **dict.fromkeys(
        (
            "market_cap_rank",
            "fully_diluted_valuation",
            "high_24h",
            "low_24h",
            "price_change_24h",
            "price_change_percentage_24h",
            "market_cap_change_24h",
            "market_cap_change_percentage_24h",
            "circulating_supply",
            "total_supply",
            "max_supply",
            "ath",
            "ath_change_percentage",
            "atl",
            "atl_change_percentage",
        ),
        NUMBER,
    ),
    "ath_date": spec("string", "null"),
    "atl_date": spec("string", "null"),
    "roi": spec("object", "null"),
    "last_updated": spec("string", role="timestamp", required=True),
    # Only with `sparkline=true` and `price_change_percentage=...`.
    "sparkline_in_7d": spec("object", always_present=False),
    **{
        f"price_change_percentage_{window}_in_currency": spec(
            "number", "null", always_present=False
        )
        for window in ("1h", "24h", "7d", "14d", "30d", "200d", "1y")
    },
}


def _id_of(item: Mapping[str, Any]) -> str | None:
    value = item.get("id")
    return value if isinstance(value, str) and value else None


class CoinGeckoSource(PagedSource[list[dict[str, Any]]]):
    name = NAME
    # The quote assets' ids here: CoinGecko's permanent ids.
    known_assets: ClassVar[Mapping[str, str]] = {
        "bitcoin": "bitcoin",
        "ethereum": "ethereum",
        "tether": "tether",
        "usd-coin": "usd-coin",
    }
    title = "CoinGecko"
    env_prefix = "COINGECKO_"
    settings_model = CoinGeckoSettings
    expected_shape = EXPECTED_SHAPE

    def __init__(
        self, settings: CoreSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        own = settings.source_settings(CoinGeckoSettings, self.env_prefix)
        plan = own.api_plan
        key = own.api_key.get_secret_value() if own.api_key else ""
        header = KEY_HEADERS[plan]
        if header and not key:
            raise UpstreamAuthError(
                f"{NAME}: COINGECKO_API_PLAN={plan.value} needs COINGECKO_API_KEY to be set"
            )
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=own.root,
            classify=classify,
            headers={header: key} if header else None,
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(own.calls_per_minute, 60),
            secrets=(key,),
            transport=transport,
        )
        self.start_crawl(settings, own.per_page, own.page_cap)

    def fetch_page(self, page: int) -> list[dict[str, Any]]:
        payload = self._client.get_json(
            "/coins/markets",
            {
                "vs_currency": "usd",
                "order": "market_cap_desc",
                "per_page": self.per_page,
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
