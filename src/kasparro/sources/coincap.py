"""CoinCap 3.0 `/assets`: paged by `limit`/`offset`, keyed; one page is one batch and one
checkpoint.

Facts (shared/upstream-specs/FACTS.md; coincapapi.mintlify.app: assets, codes and error
responses): the key goes in `Authorization: Bearer <key>` (or `apiKey=`); `limit` is at most 2,000
(more is a 400 "limit exceeds 2000"); 401 is a missing or invalid key, 429 the rate limit.
Every amount is a string (`"87711.199999999997089617"`), read as a decimal number; `rank` is a
string too. The body is `{"data": [...], "timestamp": <Unix ms>}` and items carry no time of their
own: each item is stored as `{"data": item, "timestamp": ...}`, the shape of the vendor's own
single-asset answer (`/assets/{id}`), so the observation time stays with the payload. The retired
2.0 host answers `data` as an object holding a notice: that fails the run with the notice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
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

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

NAME = "coincap"
ROOT = "https://rest.coincap.io/v3"
MAX_LIMIT = 2000


class CoinCapSettings(SourceSettings):
    """`COINCAP_*`. Off by default: version 3.0 needs a key (from pro.coincap.io/dashboard)."""

    enabled: bool = Field(default=False, description="Run this source (needs a key).")
    api_key: SecretStr | None = None
    base_url: str | None = None
    per_page: int = Field(default=MAX_LIMIT, ge=1, le=MAX_LIMIT)
    max_pages: int | None = Field(default=None, ge=1)
    # Not published for 3.0 (2.0 allowed 500 a minute with a key): a conservative default.
    rate_limit_per_minute: float = Field(default=60, gt=0)

    @property
    def root(self) -> str:
        return (self.base_url or ROOT).rstrip("/")


def _message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("error", "message"):
        if isinstance(body.get(key), str):
            return str(body[key])
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return None


def classify(response: httpx.Response) -> SourceError | None:
    """Statuses as documented: 400 a bad request, 401 the key, 404 nothing there, 429 the limit,
    5xx the service; a body that is not JSON (a CDN's page) is worth a retry."""
    if response.is_success:
        return None
    body = decode_error_body(response)
    message = _message(body)
    status = response.status_code
    if message is None:
        return generic_unavailable(NAME, response)
    if status == 429:
        return RetryAfter(
            f"{NAME}: rate limited (HTTP 429): {message}", retry_after_seconds(response)
        )
    if status in (401, 402, 403):
        return UpstreamAuthError(f"{NAME}: HTTP {status}: {message} (check COINCAP_API_KEY)")
    if status >= 500:
        return RetryAfter(f"{NAME}: HTTP {status}: {message}", retry_after_seconds(response))
    return BadPayload(f"{NAME}: HTTP {status}: {message or snippet(response)}")


def observed_at(payload: Mapping[str, Any]) -> datetime:
    value = payload.get("timestamp")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"timestamp: not a Unix time in milliseconds: {value!r}")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"timestamp: out of range: {value!r}") from None


def normalize(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One `{"data": asset, "timestamp": ms}` payload to the unified model (pure)."""
    asset = raw.payload.get("data")
    if not isinstance(asset, dict):
        return Rejection(raw=raw, reason="data: not an object", code="missing_field")
    source_asset_id = asset.get("id") if isinstance(asset.get("id"), str) else None
    try:
        fields = {
            "source_asset_id": source_asset_id,
            "symbol": asset.get("symbol"),
            "name": asset.get("name"),
            "price_usd": number_field(asset, "priceUsd", "data."),
            "market_cap_usd": number_field(asset, "marketCapUsd", "data."),
            "volume_24h_usd": number_field(asset, "volumeUsd24Hr", "data."),
            "observed_at": observed_at(raw.payload),
        }
    except ValueError as exc:
        return Rejection(raw=raw, reason=str(exc), source_asset_id=source_asset_id)
    return validate(raw, fields)


_AMOUNT = spec("numeric_string", "null")
# The stored payload: one `/assets` item under `data`, the envelope's time beside it.
EXPECTED_SHAPE: Mapping[str, FieldSpec] = {
    "timestamp": spec("number", role="timestamp", required=True),
    "data.id": spec("string", role="id", required=True),
    "data.rank": spec("numeric_string", "null"),
    "data.symbol": spec("string", role="symbol", required=True),
    "data.name": spec("string", role="name", required=True),
    "data.supply": _AMOUNT,
    "data.maxSupply": _AMOUNT,
    "data.priceUsd": spec(
        "numeric_string",
        "null",
        role="price",
        required=True,
        anchors=(Anchor("ratio", "data.marketCapUsd", "data.supply"),),
    ),
    "data.marketCapUsd": spec(
        "numeric_string",
        "null",
        role="market_cap",
        anchors=(Anchor("product", "data.priceUsd", "data.supply"),),
    ),
    "data.volumeUsd24Hr": spec("numeric_string", "null", role="volume"),
    "data.changePercent24Hr": _AMOUNT,
    "data.vwap24Hr": _AMOUNT,
    "data.explorer": spec("string", "null"),
    # 3.0 only: chain id -> contract addresses, {} for native coins.
    "data.tokens": spec("object", always_present=False),
}


class CoinCapSource(PagedSource[list[dict[str, Any]]]):
    name = NAME
    # The quote assets' ids here: CoinCap's asset ids.
    known_assets: ClassVar[Mapping[str, str]] = {
        "bitcoin": "bitcoin",
        "ethereum": "ethereum",
        "tether": "tether",
        "usd-coin": "usd-coin",
    }
    title = "CoinCap"
    env_prefix = "COINCAP_"
    settings_model = CoinCapSettings
    expected_shape = EXPECTED_SHAPE

    def __init__(
        self, settings: CoreSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        own = settings.source_settings(CoinCapSettings, self.env_prefix)
        key = own.api_key.get_secret_value() if own.api_key else ""
        if not key:
            raise UpstreamAuthError(f"{NAME}: version 3.0 needs a key: set COINCAP_API_KEY")
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=own.root,
            classify=classify,
            headers={"Authorization": f"Bearer {key}"},
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(own.rate_limit_per_minute, 60),
            secrets=(key,),
            transport=transport,
        )
        self.start_crawl(settings, own.per_page, own.max_pages)

    def fetch_page(self, page: int) -> list[dict[str, Any]]:
        """One page's items, each as `{"data": item, "timestamp": ms}` (the concurrent crawl's
        `fetch_page`)."""
        params = {"limit": self.per_page, "offset": (page - 1) * self.per_page}
        body = self._client.get_json("/assets", params)
        data, stamp = self._envelope(body, f"page {page}")
        if not isinstance(data, list):
            raise BadPayload(
                f"{NAME}: page {page}: expected data to be an array, got "
                f"{_message(body) or type(data).__name__}"
            )
        if not all(isinstance(item, dict) for item in data):
            raise BadPayload(f"{NAME}: page {page}: an item of data is not an object")
        return [{"data": item, "timestamp": stamp} for item in data]

    @staticmethod
    def _envelope(body: Any, where: str) -> tuple[Any, Any]:
        if not isinstance(body, dict) or "data" not in body:
            raise BadPayload(f"{NAME}: {where}: expected an object with data, got {body!r:.120}")
        return body["data"], body.get("timestamp")

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize(raw)

    def check(self) -> Check:
        """One asset (`/assets/bitcoin`): the key is checked all the same."""
        try:
            data, _ = self._envelope(self._client.get_json("/assets/bitcoin"), "check")
        except SourceError as exc:
            return Check("error", str(exc))
        if not isinstance(data, dict):
            return Check("error", f"{NAME}: /assets/bitcoin answered {_message({'data': data})}")
        return Check("ok", "GET /assets/bitcoin answered")

    def close(self) -> None:
        self._client.close()
