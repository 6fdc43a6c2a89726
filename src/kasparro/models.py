"""The unified model every source is normalized into, validated with Pydantic."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

# A source's name (the registry knows which exist): short, lower case, stored in 32 characters.
SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


def __getattr__(name: str) -> Any:
    # `SOURCES`, for code written before sources were plugins: the installed sources' names.
    # New code asks kasparro.sources.registry.source_names().
    if name == "SOURCES":
        from kasparro.sources.registry import source_names

        return source_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Validated by pydantic-core itself (no Python call per value): NaN and infinities refused.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Ticker = Annotated[str, StringConstraints(min_length=1, max_length=64, to_upper=True)]


# Zero-width characters some vendors leave in names, deleted by str.translate.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))
# What no text column may hold: NUL (PostgreSQL refuses it), other C0 and C1 controls (a stray
# CR or an escape sequence is damage, not a name), and lone surrogates (undecodable bytes).
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Bitcoin's genesis block: no crypto market observation can be older.
EARLIEST_OBSERVATION = datetime(2009, 1, 3, tzinfo=UTC)


class UnifiedRecord(BaseModel):
    """One source asset's observation, in the one shape every source is normalized into.

    The canonical `asset_id`, `ingested_at` and `run_id` are added when the record is loaded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    source: SourceName
    source_asset_id: str = Field(min_length=1, max_length=200)
    # None for a real coin its vendor lists without a ticker: it is resolved by name and id.
    symbol: Ticker | None = None
    name: str = Field(min_length=1, max_length=500)
    # A price is required and positive: never defaulted, never zero.
    price_usd: FiniteFloat = Field(gt=0)
    market_cap_usd: FiniteFloat | None = Field(default=None, ge=0)
    volume_24h_usd: FiniteFloat | None = Field(default=None, ge=0)
    observed_at: datetime
    raw_id: str = Field(min_length=64, max_length=64)
    # An exchange pair's quote asset (`USDT`, `EUR`, `BTC`) when the three amounts above are in
    # it, not in USD: the load path converts them with the quote's reference price, or
    # quarantines the record (load/quotes.py). None: already in USD.
    quote: Ticker | None = None

    @field_validator("source_asset_id", "symbol", "name", mode="before")
    @classmethod
    def _storable(cls, value: object) -> object:
        # Whitespace around a value (a trailing newline) is stripped, as for any field; only
        # what is left must be storable.
        if isinstance(value, str) and _UNSTORABLE.search(value.strip()):
            bad = _UNSTORABLE.search(value.strip())
            assert bad is not None
            raise PydanticCustomError(
                "unstorable_text",
                "contains the control or undecodable character {char} at {index}",
                {"char": repr(bad.group())[1:-1], "index": bad.start()},
            )
        return value

    @field_validator("symbol", mode="before")
    @classmethod
    def _no_ticker(cls, value: object) -> object:
        # An empty ticker is a coin listed without one, not a damaged record.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("name")
    @classmethod
    def _clean_name(cls, value: str) -> str:
        # Real names carry zero-width spaces ("\u200b\u200bStable").
        cleaned = value.translate(_ZERO_WIDTH).strip()
        if not cleaned:
            raise ValueError("name is empty")
        return cleaned

    @field_validator("observed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("observed_at must carry a timezone")
        value = value if value.tzinfo is UTC else value.astimezone(UTC)
        if value < EARLIEST_OBSERVATION:
            raise PydanticCustomError(
                "implausible_timestamp",
                "{when} is before any crypto market existed (2009-01-03)",
                {"when": value.isoformat()},
            )
        return value

    def observation(self) -> Observation:
        return Observation(
            self.source,
            self.source_asset_id,
            self.symbol,
            self.name,
            self.price_usd,
            self.market_cap_usd,
            self.volume_24h_usd,
            self.observed_at,
            self.raw_id,
            self.quote,
        )


class Observation(NamedTuple):
    """A validated record as the loader takes it: a plain tuple, which crosses from the fetch
    process to the writer for a fraction of what a model costs to pickle."""

    source: str
    source_asset_id: str
    symbol: str | None
    name: str
    price_usd: float
    market_cap_usd: float | None
    volume_24h_usd: float | None
    observed_at: datetime
    raw_id: str
    quote: str | None = None  # see UnifiedRecord.quote


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record exactly as a source delivered it, with its content address."""

    source: str
    payload: dict[str, Any]
    raw_id: str
    # The payload's canonical JSON: what its address is the hash of, and what is stored.
    body: bytes

    @classmethod
    def of(cls, source: str, payload: dict[str, Any]) -> RawRecord:
        body = canonical_json(payload)
        return cls(source, payload, content_hash(source, body), body)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a raw record could not be normalized; it goes to quarantine with its payload."""

    raw: RawRecord
    reason: str
    source_asset_id: str | None = None
    # A short, stable class of the reason (`ambiguous_number`, `future_timestamp`, ...).
    code: str = "invalid"


def canonical_json(payload: Any) -> bytes:
    """One serialization per content, whatever the order of its keys.

    Whatever a source delivered must be storable as it is logged: a NUL (which PostgreSQL's
    JSONB refuses) and a lone surrogate (which is not UTF-8) are written as visible escapes, and
    an integer beyond 64 bits as its digits in a string, so the payload is kept, and its record
    quarantined, instead of failing the batch.
    """
    try:
        body = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a str with lone surrogates is not UTF-8
        return orjson.dumps(_escaped(payload), option=orjson.OPT_SORT_KEYS)
    if b"\\u0000" in body:
        return orjson.dumps(_escaped(payload), option=orjson.OPT_SORT_KEYS)
    return body


def _escaped(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)  # JSON allows any integer; orjson writes 64 bits: kept exact, as text
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_escaped(str(k)): _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    return value


def content_hash(source: str, body: bytes) -> str:
    """A stable address for a payload's canonical JSON: same source and content, same id."""
    return hashlib.sha256(source.encode() + b"\0" + body).hexdigest()
