"""CoinMarketCap `/v1/cryptocurrency/listings/latest`: paged by `start`/`limit`, keyed, metered in
credits; one page is one batch and one checkpoint.

Facts (shared/upstream-specs/FACTS.md; coinmarketcap.com/api/documentation: authentication,
standards, errors and rate limits): the key goes in `X-CMC_PRO_API_KEY`; a call costs 1 credit
per 200 coins returned (`status.credit_count`); errors come as `{"status": {"error_code",
"error_message", ...}}` with 400/401/402/403/429/500, and a non-zero `error_code` may even come
with HTTP 200. Items are keyed by their permanent integer `id`, never by `symbol` (coins share
symbols); amounts are JSON numbers in `quote.USD`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.quality.expected import Anchor, FieldSpec, spec
from kasparro.sources.base import (
    BadPayload,
    Batch,
    Check,
    Cursor,
    SourceError,
    SourceSettings,
    UpstreamAuthError,
    UpstreamUnavailable,
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

NAME = "coinmarketcap"
ROOT = "https://pro-api.coinmarketcap.com"
PATH = "/v1/cryptocurrency/listings/latest"
MAX_LIMIT = 5000
COINS_PER_CREDIT = 200
# Codes no retry within a run can fix: a missing, invalid, inactive, expired or disabled key, a
# plan without the endpoint (1001-1007), a used-up daily or monthly allowance (1009, 1010).
_FATAL_CODES = {1001, 1002, 1003, 1004, 1005, 1006, 1007, 1009, 1010}
# The per-minute limit (1008) and the IP limit (1011) clear within about a minute.
_RETRY_CODES = {1008, 1011}


class CoinMarketCapSettings(SourceSettings):
    """`COINMARKETCAP_*`. Off by default: every call needs a key (free Basic plan: about 30 calls
    a minute and 10,000 credits a month)."""

    enabled: bool = Field(default=False, description="Run this source (needs a key).")
    api_key: SecretStr | None = None
    base_url: str | None = None
    # 200 coins cost 1 credit: the default run of 5 pages (the top 1,000 coins) costs 5.
    per_page: int = Field(default=COINS_PER_CREDIT, ge=1, le=MAX_LIMIT)
    max_pages: int | None = Field(default=5, ge=1)
    rate_limit_per_minute: float = Field(default=30, gt=0)

    @property
    def root(self) -> str:
        return (self.base_url or ROOT).rstrip("/")


def credits_for(coins: int) -> int:
    """What a listings call returning `coins` coins costs (1 per 200, rounded up; at least 1)."""
    return max(1, -(-coins // COINS_PER_CREDIT))


def _status_error(status_code: int, status: Mapping[str, Any], fallback: str) -> SourceError:
    code = status.get("error_code")
    message = status.get("error_message") or fallback
    described = f"{NAME}: HTTP {status_code}, error {code}: {message}"
    if code in _FATAL_CODES or status_code in (401, 402, 403):
        return UpstreamAuthError(f"{described} (check COINMARKETCAP_API_KEY and its plan)")
    if code in _RETRY_CODES or status_code == 429:
        return RetryAfter(described, None)
    if status_code >= 500 or code == 500:
        return UpstreamUnavailable(described)
    return BadPayload(described)


# An error body (a status object and no data) is far smaller than this; a page of data is not.
_ERROR_BODY_BYTES = 4096


def classify(response: httpx.Response) -> SourceError | None:
    """Errors are a `status` object; a body that is not JSON is a proxy's page, worth a retry.
    A small 2xx body is read too: CMC may send a non-zero `error_code` with HTTP 200."""
    if response.is_success:
        if len(response.content) > _ERROR_BODY_BYTES:
            return None
        body = decode_error_body(response)
        status = body.get("status") if isinstance(body, dict) else None
        if isinstance(status, dict) and status.get("error_code") not in (0, None, "0"):
            return _status_error(response.status_code, status, snippet(response))
        return None
    body = decode_error_body(response)
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, dict):
        return generic_unavailable(NAME, response)
    error = _status_error(response.status_code, status, snippet(response))
    if isinstance(error, RetryAfter):  # no Retry-After is documented; honoured if sent
        error.retry_after = retry_after_seconds(response)
    return error


def normalize(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One listings item to the unified model (pure); its id is the permanent integer id."""
    item = raw.payload
    raw_id = item.get("id")
    source_asset_id = (
        str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
    )
    quote = item.get("quote")
    usd = quote.get("USD") if isinstance(quote, dict) else None
    if not isinstance(usd, dict):
        return Rejection(
            raw=raw,
            reason="quote.USD: missing",
            source_asset_id=source_asset_id,
            code="missing_field",
        )
    try:
        fields = {
            "source_asset_id": source_asset_id,
            "symbol": item.get("symbol"),
            "name": item.get("name"),
            "price_usd": number_field(usd, "price", "quote.USD."),
            "market_cap_usd": number_field(usd, "market_cap", "quote.USD."),
            "volume_24h_usd": number_field(usd, "volume_24h", "quote.USD."),
            "observed_at": parse_utc(usd.get("last_updated") or item.get("last_updated")),
        }
    except ValueError as exc:
        return Rejection(raw=raw, reason=str(exc), source_asset_id=source_asset_id)
    return validate(raw, fields)


_USD = "quote.USD."
NUMBER = spec("number", "null")
# The listings item (FACTS.md; the recorded response in tests/samples/).
EXPECTED_SHAPE: Mapping[str, FieldSpec] = {
    "id": spec("number", role="id", required=True),
    "name": spec("string", role="name", required=True),
    "symbol": spec("string", role="symbol", required=True),
    "slug": spec("string"),
    "num_market_pairs": NUMBER,
    "date_added": spec("string", "null"),
    "tags": spec("array", "null"),
    "max_supply": NUMBER,
    "circulating_supply": NUMBER,
    "total_supply": NUMBER,
    "infinite_supply": spec("bool", "null", always_present=False),
    "platform": spec("object", "null"),
    "cmc_rank": NUMBER,
    "self_reported_circulating_supply": spec("number", "null", always_present=False),
    "self_reported_market_cap": spec("number", "null", always_present=False),
    "tvl_ratio": spec("number", "null", always_present=False),
    "last_updated": spec("string", "null"),
    f"{_USD}price": spec(
        "number",
        "null",
        role="price",
        required=True,
        anchors=(Anchor("ratio", f"{_USD}market_cap", "circulating_supply"),),
    ),
    f"{_USD}market_cap": spec(
        "number",
        "null",
        role="market_cap",
        anchors=(Anchor("product", f"{_USD}price", "circulating_supply"),),
    ),
    f"{_USD}volume_24h": spec("number", "null", role="volume"),
    f"{_USD}last_updated": spec("string", role="timestamp", required=True),
    **{
        f"{_USD}{name}": NUMBER
        for name in (
            "volume_change_24h",
            "percent_change_1h",
            "percent_change_24h",
            "percent_change_7d",
        )
    },
    **{
        f"{_USD}{name}": spec("number", "null", always_present=False)
        for name in (
            "percent_change_30d",
            "percent_change_60d",
            "percent_change_90d",
            "market_cap_dominance",
            "fully_diluted_market_cap",
            "tvl",
        )
    },
}


class CoinMarketCapSource(PagedSource[tuple[list[dict[str, Any]], int]]):
    name = NAME
    # The quote assets' ids here: CoinMarketCap's permanent numeric ids (/v1/cryptocurrency/map).
    known_assets: ClassVar[Mapping[str, str]] = {
        "1": "bitcoin",
        "1027": "ethereum",
        "825": "tether",
        "3408": "usd-coin",
    }
    title = "CoinMarketCap"
    env_prefix = "COINMARKETCAP_"
    settings_model = CoinMarketCapSettings
    expected_shape = EXPECTED_SHAPE

    def __init__(
        self, settings: CoreSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        own = settings.source_settings(CoinMarketCapSettings, self.env_prefix)
        key = own.api_key.get_secret_value() if own.api_key else ""
        if not key:
            raise UpstreamAuthError(f"{NAME}: every call needs a key: set COINMARKETCAP_API_KEY")
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=own.root,
            classify=classify,
            headers={"X-CMC_PRO_API_KEY": key},
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(own.rate_limit_per_minute, 60),
            secrets=(key,),
            transport=transport,
        )
        self.start_crawl(settings, own.per_page, own.max_pages)

    def items_of(self, content: tuple[list[dict[str, Any]], int]) -> list[dict[str, Any]]:
        return content[0]

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        """As every paged source's, with the credits the crawl has cost so far in the cursor."""
        page = self.first_page(cursor)
        credits = int(cursor.get("credits", 0)) if cursor and page > 1 else 0
        for fetched in self.crawl.pages(page):
            (items, cost), number = fetched.content, fetched.number
            credits += cost
            next_cursor: dict[str, Any] = (
                {"next_page": 1, "pages_in_last_crawl": number, "credits_in_last_crawl": credits}
                if fetched.last
                else {"next_page": number + 1, "credits": credits}
            )
            yield Batch(
                records=[RawRecord.of(NAME, item) for item in items],
                cursor=next_cursor,
                label=f"page {number}",
            )

    def fetch_page(self, page: int) -> tuple[list[dict[str, Any]], int]:
        """One page's items and the credits it cost (the concurrent crawl's `fetch_page`)."""
        start = (page - 1) * self.per_page + 1
        params = {"start": start, "limit": self.per_page, "convert": "USD"}
        body = self._client.get_json(PATH, params)
        data, status = self._envelope(body, f"page {page}")
        if not all(isinstance(item, dict) for item in data):
            raise BadPayload(f"{NAME}: page {page}: an item of data is not an object")
        cost = status.get("credit_count")
        return data, cost if isinstance(cost, int) else credits_for(len(data))

    @staticmethod
    def _envelope(body: Any, where: str) -> tuple[list[Any], Mapping[str, Any]]:
        if not isinstance(body, dict):
            raise BadPayload(f"{NAME}: {where}: expected a JSON object, got {type(body).__name__}")
        status = body.get("status")
        if not isinstance(status, dict):
            raise BadPayload(f"{NAME}: {where}: the response has no status object")
        if status.get("error_code") not in (0, None, "0"):  # an error can come with HTTP 200
            raise _status_error(200, status, "no message")
        data = body.get("data")
        if not isinstance(data, list):
            raise BadPayload(
                f"{NAME}: {where}: expected data to be an array, got {type(data).__name__}"
            )
        return data, status

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize(raw)

    def check(self) -> Check:
        """One coin of the listing: the key and the plan are checked; it costs 1 credit."""
        try:
            self._envelope(self._client.get_json(PATH, {"limit": 1, "convert": "USD"}), "check")
        except SourceError as exc:
            return Check("error", str(exc))
        return Check("ok", f"GET {PATH}?limit=1 answered (1 credit)")

    def close(self) -> None:
        self._client.close()
