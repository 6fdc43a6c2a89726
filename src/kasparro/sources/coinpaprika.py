"""CoinPaprika `/tickers`: one response with every ticker, loaded in batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, ClassVar

import httpx
from pydantic import Field, SecretStr

from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.quality.expected import Anchor, FieldSpec, spec
from kasparro.sources.base import (
    BadPayload,
    Batch,
    Check,
    Cursor,
    Source,
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
)
from kasparro.sources.timestamps import parse_utc

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

NAME = "coinpaprika"
FREE_ROOT = "https://api.coinpaprika.com/v1"
PAID_ROOT = "https://api-pro.coinpaprika.com/v1"


class CoinPaprikaSettings(SourceSettings):
    """`COINPAPRIKA_*`."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    rate_limit_per_second: float = Field(default=10, gt=0)

    @property
    def root(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return PAID_ROOT if self.api_key else FREE_ROOT


def classify(response: httpx.Response) -> SourceError | None:
    """CoinPaprika errors are `{"error": "..."}`; 402 and 403 are plan and key problems."""
    if response.is_success:
        return None
    body = decode_error_body(response)
    message = body.get("error") if isinstance(body, dict) else None
    if message is None:
        return generic_unavailable(NAME, response)
    status = response.status_code
    if status == 429:
        return RetryAfter(
            f"{NAME}: rate limited (HTTP 429): {message}", retry_after_seconds(response)
        )
    if status in (402, 403):
        hint = "plan too low or quota used up" if status == 402 else "check COINPAPRIKA_API_KEY"
        return UpstreamAuthError(f"{NAME}: HTTP {status}: {message} ({hint})")
    if status >= 500:
        return generic_unavailable(NAME, response)
    return BadPayload(f"{NAME}: HTTP {status}: {message}")


def normalize(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One `/tickers` item to the unified model (pure); numbers may be "" or null."""
    item = raw.payload
    source_asset_id = item.get("id") if isinstance(item.get("id"), str) else None
    usd = (item.get("quotes") or {}).get("USD") if isinstance(item.get("quotes"), dict) else None
    if not isinstance(usd, dict):
        return Rejection(raw=raw, reason="quotes.USD: missing", source_asset_id=source_asset_id)
    try:
        fields = {
            "source_asset_id": source_asset_id,
            "symbol": item.get("symbol"),
            "name": item.get("name"),
            "price_usd": number_field(usd, "price", "quotes.USD."),
            "market_cap_usd": number_field(usd, "market_cap", "quotes.USD."),
            "volume_24h_usd": number_field(usd, "volume_24h", "quotes.USD."),
            "observed_at": parse_utc(item.get("last_updated")),
        }
    except ValueError as exc:
        return Rejection(raw=raw, reason=str(exc), source_asset_id=source_asset_id)
    return validate(raw, fields)


# The `/tickers` item (upstream-specs/coinpaprika-openapi.yml, FACTS.md).
NUMBER = spec("number", "empty_string", "null")
_USD = "quotes.USD."
EXPECTED_SHAPE: Mapping[str, FieldSpec] = {
    "id": spec("string", role="id", required=True),
    "name": spec("string", role="name", required=True),
    "symbol": spec("string", role="symbol", required=True),
    "rank": spec("number"),
    # Absent on the free plan.
    "circulating_supply": spec("number", "empty_string", "null", always_present=False),
    "total_supply": NUMBER,
    "max_supply": NUMBER,
    "beta_value": NUMBER,
    "first_data_at": spec("string", "empty_string", "null"),
    "last_updated": spec("string", role="timestamp", required=True),
    f"{_USD}price": spec(
        "number",
        "empty_string",
        "null",
        role="price",
        required=True,
        anchors=(
            Anchor("off_ath", f"{_USD}ath_price", f"{_USD}percent_from_price_ath"),
            Anchor("ratio", f"{_USD}market_cap", "circulating_supply"),
        ),
    ),
    f"{_USD}market_cap": spec(
        "number",
        "empty_string",
        "null",
        role="market_cap",
        anchors=(Anchor("product", f"{_USD}price", "circulating_supply"),),
    ),
    f"{_USD}volume_24h": spec("number", "empty_string", "null", role="volume"),
    **{
        f"{_USD}{name}": NUMBER
        for name in (
            "volume_24h_change_24h",
            "market_cap_change_24h",
            "percent_change_15m",
            "percent_change_30m",
            "percent_change_1h",
            "percent_change_6h",
            "percent_change_12h",
            "percent_change_24h",
            "percent_change_7d",
            "percent_change_30d",
            "percent_change_1y",
            "ath_price",
            "percent_from_price_ath",
        )
    },
    f"{_USD}ath_date": spec("string", "empty_string", "null"),
}


class CoinPaprikaSource(Source):
    name = NAME
    # The quote assets' ids here: CoinPaprika's permanent ids.
    known_assets: ClassVar[Mapping[str, str]] = {
        "btc-bitcoin": "bitcoin",
        "eth-ethereum": "ethereum",
        "usdt-tether": "tether",
        "usdc-usd-coin": "usd-coin",
    }
    title = "CoinPaprika"
    env_prefix = "COINPAPRIKA_"
    settings_model = CoinPaprikaSettings
    expected_shape = EXPECTED_SHAPE

    def __init__(
        self, settings: CoreSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        own = settings.source_settings(CoinPaprikaSettings, self.env_prefix)
        key = own.api_key.get_secret_value() if own.api_key else ""
        self._batch_size = settings.etl_batch_size
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=own.root,
            classify=classify,
            headers={"Authorization": key} if key else None,
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(own.rate_limit_per_second, 1),
            secrets=(key,),
            transport=transport,
        )

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        # No paging upstream: a resumed run fetches again and skips what has not moved.
        # The body is streamed, so memory holds one batch, not the whole response.
        batch: list[RawRecord] = []
        done = 0
        for item in self._client.stream_items("/tickers", {"quotes": "USD"}):
            batch.append(RawRecord.of(NAME, item))
            if len(batch) >= self._batch_size:
                yield self._batch(batch, done, complete=False)
                done += len(batch)
                batch = []
        yield self._batch(batch, done, complete=True)

    @staticmethod
    def _batch(records: list[RawRecord], done: int, *, complete: bool) -> Batch:
        end = done + len(records)
        label = f"items {done + 1}-{end}" if records else f"end of /tickers after {done} items"
        return Batch(
            records=records,
            cursor={"complete": complete, "items_done": end},
            label=label,
        )

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize(raw)

    def check(self) -> Check:
        """One ticker, not the whole list: the key and the plan are checked all the same."""
        path = "/tickers/btc-bitcoin"
        try:
            payload = self._client.get_json(path, {"quotes": "USD"})
        except SourceError as exc:
            return Check("error", str(exc))
        if not isinstance(payload, dict) or "quotes" not in payload:
            return Check("error", f"{NAME}: {path} answered without quotes")
        return Check("ok", f"GET {path} answered")

    def close(self) -> None:
        self._client.close()
