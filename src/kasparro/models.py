"""The unified model every source is normalized into, validated with Pydantic."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NamedTuple, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

SourceName = Literal["coingecko", "coinpaprika", "csv", "csv_weird"]
SOURCES: tuple[str, ...] = get_args(SourceName)


# Validated by pydantic-core itself (no Python call per value): NaN and infinities refused.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Ticker = Annotated[str, StringConstraints(min_length=1, max_length=64, to_upper=True)]


# Zero-width characters some vendors leave in names, deleted by str.translate.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff"))


class UnifiedRecord(BaseModel):
    """One source asset's observation, in the one shape every source is normalized into.

    The canonical `asset_id`, `ingested_at` and `run_id` are added when the record is loaded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    source: SourceName
    source_asset_id: str = Field(min_length=1, max_length=200)
    symbol: Ticker
    name: str = Field(min_length=1, max_length=500)
    # A price is required and positive: never defaulted, never zero.
    price_usd: FiniteFloat = Field(gt=0)
    market_cap_usd: FiniteFloat | None = Field(default=None, ge=0)
    volume_24h_usd: FiniteFloat | None = Field(default=None, ge=0)
    observed_at: datetime
    raw_id: str = Field(min_length=64, max_length=64)

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
        return value if value.tzinfo is UTC else value.astimezone(UTC)

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
        )


class Observation(NamedTuple):
    """A validated record as the loader takes it: a plain tuple, which crosses from the fetch
    process to the writer for a fraction of what a model costs to pickle."""

    source: str
    source_asset_id: str
    symbol: str
    name: str
    price_usd: float
    market_cap_usd: float | None
    volume_24h_usd: float | None
    observed_at: datetime
    raw_id: str


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


def canonical_json(payload: Any) -> bytes:
    """One serialization per content, whatever the order of its keys."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def content_hash(source: str, body: bytes) -> str:
    """A stable address for a payload's canonical JSON: same source and content, same id."""
    return hashlib.sha256(source.encode() + b"\0" + body).hexdigest()
