"""Response models of every endpoint, and the problem document every error uses (RFC 9457)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kasparro.sources.registry import source_names

if TYPE_CHECKING:
    SourceName = str
else:
    # The installed sources (entry point group `kasparro.sources`): the schema lists them.
    SourceName = Literal[source_names()] if source_names() else str
RunStatus = Literal["running", "success", "degraded", "failed", "interrupted"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Probes ---------------------------------------------------------------------------------------


class ProbeStatus(_Model):
    """A probe's answer when it passes (a failing probe answers a problem document)."""

    status: Literal["ok", "ready"]


# Problems -------------------------------------------------------------------------------------


class ProblemParam(_Model):
    """One rejected request parameter."""

    name: str = Field(description="The parameter's name, as sent (e.g. `limit`, `from`).")
    location: str = Field(description="Where it was: query, path, header, cookie or body.")
    message: str


class Problem(_Model):
    """An RFC 9457 problem document (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="A URI reference naming the problem.")
    title: str = Field(description="A short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong in this occurrence.")
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str = Field(description="The request's id (also in the X-Request-ID header).")
    errors: list[ProblemParam] | None = Field(
        default=None, description="For validation problems: every rejected parameter."
    )


# Health ---------------------------------------------------------------------------------------


class SourceHealth(_Model):
    last_status: str | None = Field(description="Status of the source's latest run, if any.")
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None = Field(
        default=None, description="The latest failed run's error, when the latest run failed."
    )
    newest_observation_at: datetime | None = Field(
        default=None, description="The newest observed_at among the source's latest values."
    )
    observation_age_seconds: float | None = Field(
        default=None, description="How old that newest observation is, now."
    )
    stale: bool = Field(
        default=False,
        description="No successful run for SOURCE_STALE_SECONDS (none at all counts as stale "
        "only once a run was attempted).",
    )


class Health(_Model):
    status: Literal["ok", "degraded", "error"] = Field(
        description="ok; degraded: some enabled source is failing or stale (see `sources`); "
        "error: the database cannot be reached."
    )
    db: Literal["ok", "down"] = Field(description="Alias kept for existing clients.")
    database: Literal["connected", "disconnected"] = Field(
        description="Alias kept for existing clients."
    )
    etl: Literal["idle", "running", "failing", "unknown"] = Field(
        description="running: a run is in progress; failing: some enabled source's latest "
        "finished run failed; unknown: the database cannot be read."
    )
    sources: dict[str, SourceHealth] = Field(description="Every enabled source, by name.")


# /data ----------------------------------------------------------------------------------------


class DataRow(_Model):
    asset_id: str = Field(description="The canonical asset this source asset is linked to.")
    source: str
    source_asset_id: str
    symbol: str | None = Field(
        description="The source's ticker, upper case; null for a coin listed without one."
    )
    name: str
    price_usd: float
    market_cap_usd: float | None
    volume_24h_usd: float | None
    observed_at: datetime
    ingested_at: datetime
    run_id: str = Field(description="The ETL run that wrote these values.")


class PageMeta(_Model):
    request_id: str
    limit: int
    offset: int
    count: int = Field(description="Rows in this page.")
    total: int = Field(description="Rows matching the filters, over all pages.")


class DataMeta(PageMeta):
    api_latency_ms: float = Field(description="Server-side time spent on this request.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DataPage(_Model):
    data: list[DataRow]
    meta: DataMeta


# /assets --------------------------------------------------------------------------------------


class SourcePrice(_Model):
    source: str
    source_asset_id: str
    price_usd: float
    observed_at: datetime


class MemberDecision(_Model):
    """The person's decision that placed a source asset here (see GET /identity/audit)."""

    audit_id: int
    action: str = Field(description="merge, split, pin, accept or reject.")
    actor: str
    at: datetime
    reason: str


class AssetMember(_Model):
    source: str
    source_asset_id: str
    symbol: str | None
    name: str
    linked_by: Literal["human", "rule", "score", "new"] = Field(
        description="human: a person placed it (`decision`); rule: the crosswalk file; score: "
        "the resolver matched it; new: the asset was created for it."
    )
    match_method: str = Field(
        description="How the ETL linked it when first seen: id, score, crosswalk, pin (a "
        "person's pin), new or ambiguous (a new asset, with a review)."
    )
    match_score: float = Field(description="The resolver's score for that link, 0-1.")
    decision: MemberDecision | None = Field(description="Null unless a person placed it.")


class Asset(_Model):
    asset_id: str
    symbol: str | None = Field(
        description="The ticker, upper case; null for a coin listed without one (it is "
        "matched across sources by name and id)."
    )
    name: str
    consensus_price_usd: float | None = Field(
        description="The consensus reference price (GET /assets/{asset_id}/price: fresh sources, "
        "outliers excluded, volume-weighted median); null when there is none yet or the "
        "sources disagree (status disputed)."
    )
    consensus_status: Literal["ok", "disputed"] | None = Field(
        default=None, description="That price's status; null when none is computed yet."
    )
    consensus_as_of: datetime | None = Field(default=None, description="That price's as-of time.")
    source_count: int
    prices: list[SourcePrice]
    members: list[AssetMember] = Field(
        description="Its source assets and how each was linked (by score, rule or a person)."
    )


class AssetPage(_Model):
    data: list[Asset]
    meta: PageMeta


class HistoryRow(_Model):
    source: str
    source_asset_id: str
    observed_at: datetime
    price_usd: float
    market_cap_usd: float | None
    volume_24h_usd: float | None
    ingested_at: datetime
    run_id: str


class HistoryMeta(_Model):
    request_id: str
    limit: int
    count: int


class AssetHistory(_Model):
    asset_id: str
    data: list[HistoryRow] = Field(description="Newest first, then by source.")
    meta: HistoryMeta


# /quarantine ----------------------------------------------------------------------------------


class QuarantinedRecord(_Model):
    """A record that could not be read with certainty, kept with its reason and payload."""

    id: int
    source: str
    raw_id: str = Field(description="The content address of the payload (in raw_payloads).")
    source_asset_id: str | None = Field(description="The source's id for the asset, when read.")
    reason: str = Field(description="Why, in words: the field and what is wrong with it.")
    reason_code: str = Field(
        description="A short, stable class of the reason: ambiguous_number, not_a_number, "
        "invalid_value, missing_field, missing_price, unstorable_text, too_long, "
        "future_timestamp, implausible_timestamp, bad_timestamp, malformed_line, "
        "database_rejected, invalid_field."
    )
    run_id: str = Field(description="The run that quarantined it.")
    created_at: datetime = Field(description="When it was quarantined.")
    payload: dict[str, Any] = Field(
        description="The record as received; over 64 KiB, an excerpt (`truncated`: true)."
    )


class QuarantinePage(_Model):
    data: list[QuarantinedRecord] = Field(description="Newest first.")
    meta: PageMeta
