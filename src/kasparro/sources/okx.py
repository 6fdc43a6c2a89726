"""OKX spot `GET /api/v5/market/tickers?instType=SPOT` (every spot pair in one answer), its pairs
read through `GET /api/v5/public/instruments?instType=SPOT`; one run is one batch.

Facts (OKX API v5 documentation, www.okx.com/docs-v5/en/, as mirrored in rosssaunders/coincise
docs/okx/endpoints/private/get_api_v5_market_tickers.md and get_api_v5_public_instruments.md):
public market data needs no key. Both endpoints allow 20 requests per 2 seconds per IP
(instruments: per IP and instrument type). Every answer is the envelope
`{"code": "0", "msg": "", "data": [...]}`; an error is a code other than "0", with HTTP 200
(`51001` "Instrument ID does not exist") or a 4xx/5xx status (`50011` "Too Many Requests" with
429; `50001` service unavailable with 503). Every number is a string; `ts` is milliseconds.

A spot `instId` is `BASE-QUOTE`; base and quote are still read from the instrument's
`baseCcy`/`quoteCcy`, never by splitting. Only `live` instruments are used (not `suspend`,
`preopen`, `test`). For SPOT, `volCcy24h` is the 24 h volume in the quote and `vol24h` in the
base. Of each base asset's pairs, the one in the most preferred convertible quote is its
observation (sources/pairs.py); its payload is `{"instrument": {...}, "ticker": <ticker item>}`.
OKX publishes no asset names: the name is the ticker.
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

NAME = "okx"
ROOT = "https://www.okx.com"
TICKERS = "/api/v5/market/tickers"
INSTRUMENTS = "/api/v5/public/instruments"
SPOT = {"instType": "SPOT"}
# Codes worth another try: the rate limit, and the service's own trouble (unavailable, timeout,
# busy, system error).
RETRIABLE_CODES = frozenset({"50011", "50001", "50004", "50013", "50026"})
INSTRUMENT_FIELDS = ("instId", "baseCcy", "quoteCcy", "state")


class OkxSettings(SourceSettings):
    """`OKX_*`. Off by default, as every exchange source."""

    enabled: bool = Field(default=False, description="Run this source.")
    base_url: str = ROOT
    # OKX's documented limit of both endpoints: 20 requests per 2 seconds per IP.
    rate_limit_per_second: float = Field(default=10, gt=0)


def envelope_code(body: Any) -> str | None:
    code = body.get("code") if isinstance(body, dict) else None
    return str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None


def classify(response: httpx.Response) -> SourceError | None:
    """An error is the envelope's `code` other than "0", whatever the HTTP status."""
    body = decode_error_body(response)
    code = envelope_code(body)
    if code is None:
        # No envelope: the edge in front of the API (a CDN page, a bare 5xx), or a body cut off.
        return None if response.is_success else generic_unavailable(NAME, response)
    if code == "0" and response.is_success:
        return None
    message = f"{NAME}: HTTP {response.status_code} (code {code}): {body.get('msg') or ''}"
    if code in RETRIABLE_CODES or response.status_code == 429 or response.status_code >= 500:
        return RetryAfter(message.rstrip(": "), retry_after_seconds(response))
    return BadPayload(message.rstrip(": "))


def data_of(body: Any, what: str) -> list[Any]:
    data = body.get("data") if isinstance(body, dict) else None
    if envelope_code(body) != "0" or not isinstance(data, list):
        raise BadPayload(f"{NAME}: {what}: no data array in {body!r:.120}")
    return data


def observed_at(ticker: Mapping[str, Any]) -> datetime:
    value = ticker.get("ts")
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ValueError(f"ticker.ts: not a Unix time in milliseconds: {value!r}")
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"ticker.ts: out of range: {value!r}") from None


def normalize(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One `{"instrument": ..., "ticker": ...}` payload: price and volume in the pair's quote
    (pure)."""
    instrument, ticker = raw.payload.get("instrument"), raw.payload.get("ticker")
    if not isinstance(instrument, dict) or not isinstance(ticker, dict):
        return Rejection(
            raw=raw, reason="instrument or ticker: not an object", code="missing_field"
        )
    base, quote = instrument.get("baseCcy"), instrument.get("quoteCcy")
    said = base if isinstance(base, str) and base else None
    if said is None or not isinstance(quote, str) or not quote:
        return Rejection(raw=raw, reason="instrument: no baseCcy or quoteCcy", code="missing_field")
    if ticker.get("instId") != instrument.get("instId"):
        return Rejection(
            raw=raw, reason="ticker.instId: not the instrument's instId", source_asset_id=said
        )
    try:
        traded = number_field(ticker, "vol24h", "ticker.")
        fields = {
            "source_asset_id": said,
            "symbol": said,
            "name": said,
            "price_usd": number_field(ticker, "last", "ticker."),
            "volume_24h_usd": number_field(ticker, "volCcy24h", "ticker."),
            "observed_at": observed_at(ticker),
            "quote": quote_of(quote.upper()),
        }
    except ValueError as exc:
        return Rejection(raw=raw, reason=str(exc), source_asset_id=said)
    if traded == 0:
        return Rejection(
            raw=raw, reason="no trade in 24 h: a halted pair", source_asset_id=said, code="stale"
        )
    return validate(raw, fields)


_AMOUNT = spec("numeric_string", "empty_string")
EXPECTED_SHAPE: Mapping[str, FieldSpec] = {
    "instrument.instId": spec("string", required=True),
    "instrument.baseCcy": spec("string", role="id", required=True),
    "instrument.quoteCcy": spec("string", required=True),
    "instrument.state": spec("string", required=True),
    "ticker.instType": spec("string", required=True),
    "ticker.instId": spec("string", required=True),
    "ticker.last": spec("numeric_string", role="price", required=True),
    "ticker.volCcy24h": spec("numeric_string", role="volume"),
    "ticker.vol24h": spec("numeric_string", required=True),
    "ticker.ts": spec("numeric_string", role="timestamp", required=True),
    **{
        f"ticker.{key}": _AMOUNT
        for key in (
            "lastSz",
            "askPx",
            "askSz",
            "bidPx",
            "bidSz",
            "open24h",
            "high24h",
            "low24h",
            "sodUtc0",
            "sodUtc8",
        )
    },
}


def live_instruments(data: list[Any]) -> dict[str, dict[str, Any]]:
    """The `live` spot instruments, by instId, as stored in a payload."""
    return {
        item["instId"]: {k: item.get(k) for k in INSTRUMENT_FIELDS}
        for item in data
        if isinstance(item, dict)
        and item.get("state") == "live"
        and isinstance(item.get("instId"), str)
        and isinstance(item.get("baseCcy"), str)
        and isinstance(item.get("quoteCcy"), str)
    }


class OkxSource(Source):
    name = NAME
    # The quote assets' ids here: OKX's currency codes (the instrument's baseCcy).
    known_assets: ClassVar[Mapping[str, str]] = {
        "BTC": "bitcoin",
        "ETH": "ethereum",
        "USDT": "tether",
        "USDC": "usd-coin",
    }
    title = "OKX"
    env_prefix = "OKX_"
    settings_model = OkxSettings
    expected_shape = EXPECTED_SHAPE
    fake = "kasparro.fakes.okx:FAKE"

    def __init__(
        self, settings: CoreSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        own = settings.source_settings(OkxSettings, self.env_prefix)
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=own.base_url.rstrip("/"),
            classify=classify,
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(own.rate_limit_per_second, 1),
            transport=transport,
        )

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        instruments = live_instruments(
            data_of(self._client.get_json(INSTRUMENTS, SPOT), "instruments")
        )
        tickers = data_of(self._client.get_json(TICKERS, SPOT), "tickers")
        chosen = preferred_pairs(
            Pair(str(pair["baseCcy"]).upper(), str(pair["quoteCcy"]).upper(), ticker)
            for ticker in tickers
            if isinstance(ticker, dict) and (pair := instruments.get(ticker.get("instId")))  # type: ignore[arg-type]
        )
        records = [
            RawRecord.of(
                NAME, {"instrument": instruments[p.item["instId"]], "ticker": dict(p.item)}
            )
            for p in chosen
        ]
        yield Batch(records=records, cursor={"pairs": len(records)}, label="tickers")

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize(raw)

    def check(self) -> Check:
        """`/api/v5/public/time`: reachable, and answering with its envelope."""
        try:
            data_of(self._client.get_json("/api/v5/public/time"), "time")
        except SourceError as exc:
            return Check("error", str(exc))
        return Check("ok", "GET /api/v5/public/time answered")

    def close(self) -> None:
        self._client.close()
