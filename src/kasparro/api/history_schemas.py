"""Response models of the time-series endpoints (candles); exports are files, not JSON."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Candle(_Model):
    start: datetime = Field(description="The bucket's start (UTC, aligned on the Unix epoch).")
    end: datetime = Field(description="The bucket's end, exclusive.")
    open: float = Field(description="The price of the bucket's first observation.")
    high: float
    low: float
    close: float = Field(description="The price of the bucket's last observation.")
    volume_24h_usd: float | None = Field(
        description="The rolling 24-hour volume the source reported with the last observation "
        "(not a sum: 24h volumes overlap); null for the consensus."
    )
    observations: int = Field(description="Observations in the bucket.")
    first_observed_at: datetime
    last_observed_at: datetime


class CandleMeta(_Model):
    request_id: str
    limit: int
    count: int = Field(description="Candles in this page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same other parameters) for the next page; null "
        "on the last page."
    )


class CandlePage(_Model):
    asset_id: str
    source: str = Field(description="The source, or `consensus` (the reference price).")
    interval: str
    data: list[Candle] = Field(description="Oldest first; buckets without observations are absent.")
    meta: CandleMeta
