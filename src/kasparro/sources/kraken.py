"""Kraken `GET /0/public/Ticker` (every pair at once), read with `/0/public/AssetPairs` and
`/0/public/Assets`; one run is one batch.

Facts (shared/upstream-specs/FACTS.md; krakenfx/api-specs spot-rest OpenAPI, docs.kraken.com
REST introduction and errors guide): public calls need no key. The body is
`{"error": [...], "result": {...}}` with HTTP 200 even for errors, which are strings
`<E|W><Category>:<Message>` (`EGeneral:Too many requests`, `EAPI:Rate limit exceeded`,
`EService:Unavailable`, `EQuery:Unknown asset pair`); `W...` are warnings beside a result, and a
result can come with errors (read it all the same). Public calls are throttled per IP at about
one a second.

Asset codes are Kraken's own: `XXBT`, `XETH`, `XXDG`, `ZUSD`, `ZEUR`, but `SOL`, `USDT`. A pair
(`XXBTZUSD`, `SOLUSD`) names its `base` and `quote` codes in AssetPairs; Assets gives each code's
`altname` (`XBT`, `XDG`, `USD`). Two altnames are Kraken's alone and mapped here to the tickers
everyone else uses: `XBT` is BTC, `XDG` is DOGE. Ticker has no time: the run reads `/0/public/Time`
once and stores it with each item. The price is the last trade (`c[0]`); the 24 h volume in the
quote is the 24 h base volume times the 24 h VWAP (`v[1] * p[1]`). Of each base asset's pairs,
the one in the most preferred convertible quote is its observation (sources/pairs.py). Kraken
publishes no asset names: the name is the ticker.
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
    parse_number,
    validate,
)
from kasparro.sources.http import (
    RetryAfter,
    RetryPolicy,
    UpstreamClient,
    decode_error_body,
    generic_unavailable,
    rate_limiter,
)
from kasparro.sources.pairs import Pair, preferred_pairs, quote_of

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

NAME = "kraken"
ROOT = "https://api.kraken.com"
# Kraken's own altnames for assets the rest of the market tickers otherwise.
LEGACY_TICKERS = {"XBT": "BTC", "XDG": "DOGE"}
# Errors worth another try: the throttle and the service's own trouble.
_RETRIABLE = (
    "EGeneral:Too many requests",
    "EAPI:Rate limit exceeded",
    "EService:",
    "EGeneral:Internal error",
)


class KrakenSettings(SourceSettings):
    """`KRAKEN_*`. Off by default, as every exchange source."""

    enabled: bool = Field(default=False, description="Run this source.")
    base_url: str = ROOT
    # About one public call a second per IP (Kraken's support article, as ccxt applies it).
    rate_limit_per_minute: float = Field(default=60, gt=0)


def ticker_of(altname: str) -> str:
    """The standard ticker of a Kraken asset altname (`XBT` -> `BTC`)."""
    upper = altname.upper()
    return LEGACY_TICKERS.get(upper, upper)


def api_errors(body: Any) -> list[str]:
    errors = body.get("error") if isinstance(body, dict) else None
    return [str(e) for e in errors] if isinstance(errors, list) else []


def classify(response: httpx.Response) -> SourceError | None:
    """Errors arrive in the body's `error` array with HTTP 200; other statuses come from the
    edge in front of the API (Cloudflare pages, 429, 5xx)."""
    if not response.is_success:
        return generic_unavailable(NAME, response)
    body = decode_error_body(response)
    errors = [e for e in api_errors(body) if e.startswith("E")]
    if not errors:
        return None
    message = f"{NAME}: {', '.join(errors)}"
    if any(e.startswith(_RETRIABLE) for e in errors):
        return RetryAfter(message, None)
    if isinstance(body, dict) and isinstance(body.get("result"), dict) and body["result"]:
        return None  # errors about some pairs beside a result for the others: read the result
    return BadPayload(message)


def result_of(body: Any, what: str) -> dict[str, Any]:
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict):
        raise BadPayload(f"{NAME}: {what}: no result object ({', '.join(api_errors(body))})")
    return result


def _amount(ticker: Mapping[str, Any], key: str, index: int) -> float | None:
    values = ticker.get(key)
    if not isinstance(values, list) or len(values) <= index:
        raise ValueError(f"ticker.{key}: expected an array of at least {index + 1}")
    try:
        return parse_number(values[index])
    except ValueError as exc:
        raise ValueError(f"ticker.{key}[{index}]: {exc}") from None


def observed_at(payload: Mapping[str, Any]) -> datetime:
    value = payload.get("time")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"time: not a Unix time in seconds: {value!r}")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"time: out of range: {value!r}") from None


def normalize(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One `{"pair", "pair_key", "base", "quote", "ticker", "time"}` payload (pure): price and
    volume in the pair's quote."""
    item = raw.payload
    ticker, base, quote = item.get("ticker"), item.get("base"), item.get("quote")
    if not (isinstance(ticker, dict) and isinstance(base, dict) and isinstance(quote, dict)):
        return Rejection(
            raw=raw, reason="ticker, base or quote: not an object", code="missing_field"
        )
    code = base.get("code") if isinstance(base.get("code"), str) else None
    base_name, quote_name = base.get("altname"), quote.get("altname")
    if not isinstance(base_name, str) or not isinstance(quote_name, str):
        return Rejection(raw=raw, reason="base or quote: no altname", source_asset_id=code)
    try:
        price = _amount(ticker, "c", 0)
        volume, vwap = _amount(ticker, "v", 1), _amount(ticker, "p", 1)
        fields = {
            "source_asset_id": code,
            "symbol": ticker_of(base_name),
            "name": ticker_of(base_name),
            "price_usd": price,
            "volume_24h_usd": volume * vwap if volume is not None and vwap is not None else None,
            "observed_at": observed_at(item),
            "quote": quote_of(ticker_of(quote_name)),
        }
    except ValueError as exc:
        return Rejection(raw=raw, reason=str(exc), source_asset_id=code)
    return validate(raw, fields)


_PAIR_OF_STRINGS = spec("array", required=True)
EXPECTED_SHAPE: Mapping[str, FieldSpec] = {
    "time": spec("number", role="timestamp", required=True),
    "pair_key": spec("string", required=True),
    "pair.altname": spec("string", required=True),
    "pair.wsname": spec("string", always_present=False),
    "pair.base": spec("string", required=True),
    "pair.quote": spec("string", required=True),
    "pair.status": spec("string", always_present=False),
    "base.code": spec("string", role="id", required=True),
    "base.altname": spec("string", role="symbol", required=True),
    "quote.code": spec("string", required=True),
    "quote.altname": spec("string", required=True),
    "ticker.c": spec("array", role="price", required=True),
    "ticker.v": spec("array", role="volume", required=True),
    "ticker.p": spec("array", required=True),
    "ticker.a": _PAIR_OF_STRINGS,
    "ticker.b": _PAIR_OF_STRINGS,
    "ticker.t": _PAIR_OF_STRINGS,
    "ticker.l": _PAIR_OF_STRINGS,
    "ticker.h": _PAIR_OF_STRINGS,
    "ticker.o": spec("numeric_string", required=True),
}


class KrakenSource(Source):
    name = NAME
    # The quote assets' ids here: Kraken's asset codes (XXBT is Bitcoin).
    known_assets: ClassVar[Mapping[str, str]] = {
        "XXBT": "bitcoin",
        "XETH": "ethereum",
        "USDT": "tether",
        "USDC": "usd-coin",
    }
    title = "Kraken"
    env_prefix = "KRAKEN_"
    settings_model = KrakenSettings
    expected_shape = EXPECTED_SHAPE
    fake = "kasparro.fakes.kraken:FAKE"

    def __init__(
        self, settings: CoreSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        own = settings.source_settings(KrakenSettings, self.env_prefix)
        self._client = UpstreamClient(
            vendor=NAME,
            base_url=own.base_url.rstrip("/"),
            classify=classify,
            headers={"user-agent": "kasparro"},  # Kraken asks public callers to send one
            timeout=settings.http_timeout_seconds,
            policy=RetryPolicy(settings.http_max_attempts, settings.http_max_retry_seconds),
            limiter=rate_limiter(own.rate_limit_per_minute, 60),
            transport=transport,
        )

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        assets = result_of(self._client.get_json("/0/public/Assets"), "Assets")
        pairs = result_of(self._client.get_json("/0/public/AssetPairs"), "AssetPairs")
        time = result_of(self._client.get_json("/0/public/Time"), "Time").get("unixtime")
        tickers = result_of(self._client.get_json("/0/public/Ticker"), "Ticker")

        def altname(code: Any) -> str | None:
            asset = assets.get(code) if isinstance(code, str) else None
            name = asset.get("altname") if isinstance(asset, dict) else None
            return name if isinstance(name, str) else None

        candidates = []
        for key, ticker in tickers.items():
            pair = pairs.get(key)
            if not (isinstance(pair, dict) and isinstance(ticker, dict)):
                continue
            if pair.get("status", "online") != "online":
                continue
            base, quote = altname(pair.get("base")), altname(pair.get("quote"))
            if base is None or quote is None:
                continue
            candidates.append(
                Pair(ticker_of(base), ticker_of(quote), {"key": key, "ticker": ticker})
            )
        records = []
        for chosen in preferred_pairs(candidates):
            key = chosen.item["key"]
            pair = pairs[key]
            records.append(
                RawRecord.of(
                    NAME,
                    {
                        "time": time,
                        "pair_key": key,
                        "pair": {
                            k: pair[k]
                            for k in ("altname", "wsname", "base", "quote", "status")
                            if k in pair
                        },
                        "base": {"code": pair["base"], "altname": altname(pair["base"])},
                        "quote": {"code": pair["quote"], "altname": altname(pair["quote"])},
                        "ticker": chosen.item["ticker"],
                    },
                )
            )
        yield Batch(records=records, cursor={"pairs": len(records)}, label="Ticker")

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize(raw)

    def check(self) -> Check:
        try:
            status = result_of(self._client.get_json("/0/public/SystemStatus"), "SystemStatus")
        except SourceError as exc:
            return Check("error", str(exc))
        state = status.get("status")
        if state != "online":
            return Check("warning", f"{NAME}: system status is {state!r}")
        return Check("ok", "GET /0/public/SystemStatus: online")

    def close(self) -> None:
        self._client.close()
