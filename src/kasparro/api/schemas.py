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


# /etl/run -------------------------------------------------------------------------------------


class StartedRun(_Model):
    run_id: str
    source: str


class StartedRuns(_Model):
    runs: list[StartedRun]


# /stats ---------------------------------------------------------------------------------------


class SourceStats(_Model):
    enabled: bool
    runs_total: int
    last_run_id: str | None = Field(description="The latest finished run.")
    last_run_status: str | None
    last_run_records_processed: int | None
    last_run_duration_ms: int | None
    records_processed_total: int = Field(description="Records processed over all runs.")
    last_success_at: datetime | None
    last_failure_at: datetime | None
    running: bool = Field(description="A run of this source is in progress.")
    quarantined: int = Field(description="Records held in quarantine for this source.")
    quarantine_reasons: dict[str, int] = Field(
        description="Those records per `reason_code` (see GET /quarantine), most frequent first."
    )
    assets: int = Field(description="Source assets with a latest value.")


class Stats(_Model):
    assets_total: int = Field(description="Canonical assets.")
    sources: dict[str, SourceStats]


# /runs ----------------------------------------------------------------------------------------


class Run(_Model):
    run_id: str
    source: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    records_processed: int
    records_loaded: int
    records_unchanged: int
    records_quarantined: int
    records_revised: int = Field(
        description="Stored observations whose values the source corrected (the replaced "
        "values are kept as revisions)."
    )
    batches_committed: int
    duration_ms: int | None
    error: str | None = Field(
        description="How the run failed or degraded, in words: the class of failure and where "
        "(never driver text or SQL)."
    )
    failure_point: str | None


class RunPage(_Model):
    data: list[Run]
    meta: PageMeta


# /drift and /anomalies ------------------------------------------------------------------------


class DriftEvent(_Model):
    """A difference between a payload and its source's expected schema, seen by one run."""

    id: int
    run_id: str
    source: str
    kind: Literal["missing", "new", "type_change", "rename"]
    field: str = Field(description="The field, as a dotted path (`quotes.USD.price`).")
    detail: str
    confidence: float = Field(
        description="How sure a rename match is (0-1); for a missing field, its best candidate's."
    )
    action: Literal["noted", "applied", "quarantined"] = Field(
        description="`applied`: a rename was followed; `quarantined`: the affected records were."
    )
    items: int = Field(description="Records of the run that showed it.")
    created_at: datetime


class DriftPage(_Model):
    data: list[DriftEvent]
    meta: PageMeta


class Anomaly(_Model):
    """A run unlike its source's recent runs, or a price unlike the other sources' prices."""

    id: int
    run_id: str
    source: str
    kind: str = Field(
        description="record_count_drop, duration_spike, error_spike, stale_source or "
        "price_outlier (price_disagreement: recorded by versions before 0003)."
    )
    asset_id: str | None = Field(description="For price anomalies, the canonical asset.")
    detail: str
    value: float | None = Field(description="What was seen.")
    baseline: float | None = Field(description="What it was compared with.")
    created_at: datetime


class AnomalyPage(_Model):
    data: list[Anomaly]
    meta: PageMeta


class RunDetail(Run):
    error_detail: str | None = Field(
        default=None,
        description="The full error (driver text, statement, trace; secrets redacted). Only "
        "with a valid X-API-Key; null otherwise.",
    )
    drift_events: list[DriftEvent] = Field(description="Schema drift the run saw.")
    anomalies: list[Anomaly] = Field(description="Anomalies found when the run finished.")


class CountDelta(_Model):
    a: int | None
    b: int | None
    delta: int | None = Field(description="b - a, when both are known.")


class SourceAssetRef(_Model):
    source: str
    source_asset_id: str


class AssetChanges(_Model):
    count: int
    items: list[SourceAssetRef] = Field(description="Up to 100, sorted.")


class PriceMove(_Model):
    source: str
    source_asset_id: str
    asset_id: str
    price_a: float
    price_b: float
    change_pct: float = Field(description="(price_b - price_a) / price_a * 100.")


class RunComparison(_Model):
    a: Run
    b: Run
    records_processed: CountDelta
    records_loaded: CountDelta
    records_unchanged: CountDelta
    records_quarantined: CountDelta
    duration_ms: CountDelta
    assets_added: AssetChanges = Field(description="Observed by run b, not by run a.")
    assets_removed: AssetChanges = Field(description="Observed by run a, not by run b.")
    largest_price_moves: list[PriceMove] = Field(
        description="Up to 10 source assets observed by both runs, by absolute relative change."
    )
    anomalies_a: list[Anomaly] = Field(description="Anomalies found for run a.")
    anomalies_b: list[Anomaly] = Field(description="Anomalies found for run b.")


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
