"""Binance spot `GET /api/v3/ticker/24hr` (every symbol in one answer), its pairs read through
`GET /api/v3/exchangeInfo`; one run is one batch.

Facts (shared/upstream-specs/FACTS.md, from binance/binance-spot-api-docs rest-api.md, errors.md
and faqs/market_data_only.md): public market data needs no key. Limits are request weight per
IP per minute (6,000 since 2023; `exchangeInfo` weighs 20, `ticker/24hr` with no symbol 80); each
answer says the weight used in `X-MBX-USED-WEIGHT-1M`. Over the limit: 429 with `Retry-After`;
calling on after 429s gets the IP banned, 418 with `Retry-After` (2 minutes to 3 days). 451 is a
refused location. Errors are `{"code": -1121, "msg": "Invalid symbol."}`.

A symbol glues base and quote with no separator (`ETHBTC`): they are read from `exchangeInfo`'s
`baseAsset`/`quoteAsset`, never by splitting. Only `TRADING` symbols are used (delisted ones stay
in the ticker list with zero prices). Of each base asset's pairs, the one in the most preferred
convertible quote is its observation (sources/pairs.py); its payload is stored as
`{"pair": <exchangeInfo symbol>, "ticker": <ticker item>}`. Binance publishes no asset names:
the name is the ticker.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import Field

from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.quality.expected import FieldSpec, spec
from kasparro.sources.base import (
    BadPayload,
    Batch,
    Check,
    Cursor,
    Source,
    SourceError,
    SourceSettings,
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
)
from kasparro.sources.pairs import Pair, preferred_pairs, quote_of

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

NAME = "binance"
ROOT = "https://api.binance.com"
WEIGHT_HEADER = "x-mbx-used-weight-1m"
# Request weights as documented (all symbols at once; the whole exchangeInfo).
TICKER_WEIGHT = 80
EXCHANGE_INFO_WEIGHT = 20


class BinanceSettings(SourceSettings):
    """`BINANCE_*`. Off by default: Binance refuses some locations (HTTP 451)."""

    enabled: bool = Field(default=False, description="Run this source.")
    base_url: str = ROOT
    # The documented per-IP budget; a run never spends what would cross it.
    weight_limit_per_minute: int = Field(default=6000, ge=TICKER_WEIGHT)
    rate_limit_per_minute: float = Field(default=60, gt=0)


class Refused(SourceError):
    """A ban (418) or a refused location (451): retrying makes a ban longer, or cannot help."""


class WeightMeter:
    """The request weight Binance says this IP used in the current minute, from each answer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def afford(self, weight: int, what: str) -> None:
        """Refuse a call that would cross the budget: a 429 risks a ban, a skipped run does not."""
        if self.used + weight > self.limit:
            raise UpstreamUnavailable(
                f"{NAME}: request weight {self.used} of {self.limit} used this minute; "
                f"{what} (weight {weight}) is left for the next run"
            )

    def classify(self, response: httpx.Response) -> SourceError | None:
        used = response.headers.get(WEIGHT_HEADER, "")
        if used.isdigit():
            self.used = int(used)
        return classify(response)


def classify(response: httpx.Response) -> SourceError | None:
    if response.is_success:
        return None
    status = response.status_code
    body = decode_error_body(response)
    if not (isinstance(body, dict) and isinstance(body.get("msg"), str)):
        return generic_unavailable(NAME, response)
    message = f"{NAME}: HTTP {status} (code {body.get('code')}): {body['msg']}"
    if status == 429:
        return RetryAfter(message, retry_after_seconds(response))
    if status == 418:
        return Refused(f"{message} (the IP is banned; lower BINANCE_WEIGHT_LIMIT_PER_MINUTE)")
    if status == 451:
        return Refused(f"{message} (set BINANCE_BASE_URL, or BINANCE_ENABLED=false)")
    if status >= 500:
        return RetryAfter(message, retry_after_seconds(response))
    return BadPayload(message)


def observed_at(ticker: Mapping[str, Any]) -> datetime:
    value = ticker.get("closeTime")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"ticker.closeTime: not a Unix time in milliseconds: {value!r}")
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"ticker.closeTime: out of range: {value!r}") from None


def normalize(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One `{"pair": ..., "ticker": ...}` payload: price and volume in the pair's quote (pure)."""
    pair, ticker = raw.payload.get("pair"), raw.payload.get("ticker")
    if not isinstance(pair, dict) or not isinstance(ticker, dict):
        return Rejection(raw=raw, reason="pair or ticker: not an object", code="missing_field")
    base, quote = pair.get("baseAsset"), pair.get("quoteAsset")
    said = base if isinstance(base, str) else None
    if ticker.get("symbol") != pair.get("symbol") or not isinstance(quote, str):
        return Rejection(
            raw=raw, reason="ticker.symbol: not the pair's symbol", source_asset_id=said
        )
    if ticker.get("count") == 0:
        return Rejection(
            raw=raw, reason="no trade in 24 h: a halted pair", source_asset_id=said, code="stale"
        )
    try:
        fields = {
            "source_asset_id": said,
            "symbol": base,
            "name": base,
            "price_usd": number_field(ticker, "lastPrice", "ticker."),
            "volume_24h_usd": number_field(ticker, "quoteVolume", "ticker."),
            "observed_at": observed_at(ticker),
            "quote": quote_of(quote.upper()),
        }
    except ValueError as exc:
        return Rejection(raw=raw, reason=str(exc), source_asset_id=said)
    return validate(raw, fields)


_AMOUNT = spec("numeric_string")
EXPECTED_SHAPE: Mapping[str, FieldSpec] = {
    "pair.symbol": spec("string", required=True),
    "pair.status": spec("string", required=True),
    "pair.baseAsset": spec("string", role="id", required=True),
    "pair.quoteAsset": spec("string", required=True),
    "ticker.symbol": spec("string", required=True),
    "ticker.lastPrice": spec("numeric_string", role="price", required=True),
    "ticker.quoteVolume": spec("numeric_string", role="volume"),
    "ticker.closeTime": spec("number", role="timestamp", required=True),
    "ticker.count": spec("number", required=True),
    **{
        f"ticker.{key}": _AMOUNT
        for key in (
            "priceChange",
            "priceChangePercent",
            "weightedAvgPrice",
            "prevClosePrice",
            "lastQty",
            "bidPrice",
            "bidQty",
            "askPrice",
            "askQty",
            "openPrice",
            "highPrice",
            "lowPrice",
            "volume",
        )
    },
    "ticker.openTime": spec("number"),
    "ticker.firstId": spec("number"),
    "ticker.lastId": spec("number"),
}


def trading_pairs(exchange_info: Any) -> dict[str, dict[str, Any]]:
    """`exchangeInfo`'s TRADING symbols, by symbol, as stored in a payload."""
    symbols = exchange_info.get("symbols") if isinstance(exchange_info, dict) else None
    if not isinstance(symbols, list):
        raise BadPayload(f"{NAME}: exchangeInfo: no symbols array")
    return {
        s["symbol"]: {k: s.get(k) for k in ("symbol", "status", "baseAsset", "quoteAsset")}
        for s in symbols
        if isinstance(s, dict) and s.get("status") == "TRADING" and isinstance(s.get("symbol"), str)
    }


class BinanceSource(Source):
    name = NAME
    # The quote assets' ids here: Binance's asset codes (exchangeInfo baseAsset).
    known_assets: ClassVar[Mapping[str, str]] = {
        "BTC": "bitcoin",
        "ETH": "ethereum",
        "USDT": "tether",
        "USDC": "usd-coin",
    }
    title = "Binance"
    env_prefix = "BINANCE_"
    settings_model = BinanceSettings
    expected_shape = EXPECTED_SHAPE
    fake = "kasparro.fakes.binance:FAKE"

    def __init__(
        self, settings: CoreSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        own = settings.source_settings(BinanceSettings, self.env_prefix)
        self.weight = WeightMeter(own.weight_limit_per_minute)
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=own.base_url.rstrip("/"),
            classify=self.weight.classify,
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(own.rate_limit_per_minute, 60),
            transport=transport,
        )

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        self.weight.afford(EXCHANGE_INFO_WEIGHT, "exchangeInfo")
        pairs = trading_pairs(self._client.get_json("/api/v3/exchangeInfo"))
        self.weight.afford(TICKER_WEIGHT, "ticker/24hr")
        tickers = self._client.get_json("/api/v3/ticker/24hr")
        if not isinstance(tickers, list):
            raise BadPayload(f"{NAME}: ticker/24hr: expected an array, got {tickers!r:.120}")
        chosen = preferred_pairs(
            Pair(str(pair["baseAsset"]).upper(), str(pair["quoteAsset"]).upper(), ticker)
            for ticker in tickers
            if isinstance(ticker, dict)
            and (pair := pairs.get(ticker.get("symbol")))  # type: ignore[arg-type]
            and isinstance(pair.get("baseAsset"), str)
            and isinstance(pair.get("quoteAsset"), str)
        )
        records = [
            RawRecord.of(NAME, {"pair": pairs[p.item["symbol"]], "ticker": dict(p.item)})
            for p in chosen
        ]
        yield Batch(records=records, cursor={"pairs": len(records)}, label="ticker/24hr")

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize(raw)

    def check(self) -> Check:
        """`/api/v3/ping` (weight 1): reachable, and not refused here."""
        try:
            self._client.get_json("/api/v3/ping")
        except SourceError as exc:
            return Check("error", str(exc))
        return Check("ok", f"GET /api/v3/ping answered (weight used {self.weight.used})")

    def close(self) -> None:
        self._client.close()
