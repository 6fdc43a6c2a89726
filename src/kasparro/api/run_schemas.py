"""Response models of the runs: starting them (/etl/run), their statistics (/stats), the runs
themselves and two compared (/runs), and what they saw (/drift, /anomalies)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kasparro.api.schemas import PageMeta


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
