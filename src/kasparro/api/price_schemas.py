"""Response models of the reference price endpoints (/assets/{id}/price, /prices,
/consensus/compute). The method is in docs/methodology.md."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriceConstituent(_Model):
    """One source's latest observation of the asset, and what the method did with it."""

    source: str
    source_asset_id: str
    price_usd: float
    volume_24h_usd: float | None = Field(
        description="As the source reported it; null when it reports none (weighted as the "
        "smallest volume reported)."
    )
    observed_at: datetime
    weight: float | None = Field(
        description="Its share of the weighted median (0-1, at most 0.4 when three or more are "
        "used); null when excluded."
    )
    reason: Literal["stale", "frozen", "outlier", "disputed"] | None = Field(
        description="Why it was excluded: `stale` (older than CONSENSUS_FRESHNESS_SECONDS "
        "before the as-of time), `frozen` (one value over its last observations while the "
        "others moved), `outlier` (beyond the robust band around the median), `disputed` "
        "(passed every test, but no majority agreed); null when used."
    )
    detail: str | None = Field(description="The reason in words, with the figures.")


class ReferencePrice(_Model):
    asset_id: str
    as_of: datetime = Field(
        description="The time the price is for: the newest observation among the asset's "
        "sources (never later than when it was computed)."
    )
    status: Literal["ok", "disputed"] = Field(
        description="`ok`: a price is published; `disputed`: no price, because the fresh "
        "sources disagree (no majority within the band, or dispersion above "
        "CONSENSUS_MAX_DISPERSION_BPS). The newest observation is never stale, so there is "
        "always a constituent to judge."
    )
    price_usd: float | None = Field(
        description="The volume-weighted median of the constituents used; null unless `ok`."
    )
    dispersion_bps: float | None = Field(
        description="1.4826 x the median absolute deviation of the used constituents' log "
        "prices from the log of the price, in basis points (a robust relative standard "
        "deviation); null with a single source or no price."
    )
    single_source: bool = Field(description="The price rests on one source only.")
    sources_used: int
    sources_total: int
    computed_at: datetime
    used: list[PriceConstituent] = Field(description="The constituents of the price.")
    excluded: list[PriceConstituent] = Field(description="The others, each with its reason.")


class PriceListMeta(_Model):
    request_id: str
    count: int
    missing: list[str] = Field(
        description="Requested asset ids with no reference price (unknown, or not computed yet)."
    )
    merged: dict[str, str] = Field(
        default_factory=dict,
        description="Requested ids of assets merged into another: each -> the asset it joined, "
        "whose price `data` holds in its place.",
    )


class PriceList(_Model):
    data: list[ReferencePrice] = Field(description="In the order requested.")
    meta: PriceListMeta


class PriceHistoryMeta(_Model):
    request_id: str
    limit: int
    count: int
    next_cursor: str | None = Field(
        description="Pass as `cursor` for older rows; null on the last page."
    )


class PriceHistory(_Model):
    asset_id: str
    data: list[ReferencePrice] = Field(description="Newest first.")
    meta: PriceHistoryMeta


class ConsensusComputed(_Model):
    assets: int = Field(description="Assets with a source price, computed.")
    written: int = Field(
        description="Rows inserted or changed (a recomputation over unchanged data writes none)."
    )
    statuses: dict[str, int] = Field(description="Assets per status (ok, disputed, ...).")
    single_source: int = Field(description="Of the `ok` ones, priced from a single source.")
    seconds: float
