"""GET /drift and /anomalies: what the ETL noticed about its upstreams and its runs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from kasparro.api.errors import problem_responses
from kasparro.api.queries import events as events_queries
from kasparro.api.routes import NO_NUL, EngineDep, Limit, Offset, page_meta
from kasparro.api.run_schemas import AnomalyPage, DriftPage
from kasparro.api.schemas import SourceName
from kasparro.db.schema import anomalies, drift_events

router = APIRouter(tags=["quality"])

SourceFilter = Annotated[SourceName | None, Query(description="Only this source.")]
RunFilter = Annotated[
    str | None, Query(min_length=1, max_length=36, pattern=NO_NUL, description="Only this run.")
]
AnomalyKind = Literal[
    "record_count_drop",
    "duration_spike",
    "error_spike",
    "stale_source",
    "price_outlier",
    "price_disagreement",
]


@router.get(
    "/drift",
    response_model=DriftPage,
    summary="Schema drift events, newest first",
    responses=problem_responses(422, 429, 500, 503),
)
def list_drift(
    request: Request,
    engine: EngineDep,
    source: SourceFilter = None,
    run_id: RunFilter = None,
    kind: Annotated[
        Literal["missing", "new", "type_change", "rename"] | None,
        Query(description="Only this kind of drift."),
    ] = None,
    action: Annotated[
        Literal["noted", "applied", "quarantined"] | None,
        Query(description="Only drift that was handled this way."),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DriftPage:
    """Each run compares its payload with the source's expected schema. A rename matched with
    confidence at or above DRIFT_RENAME_CONFIDENCE is `applied`; a required field that is missing,
    renamed with less confidence or of another type has its records `quarantined`, and the run is
    `degraded`."""
    with engine.connect() as conn:
        rows, total = events_queries.events_page(
            conn,
            drift_events,
            equal={"source": source, "run_id": run_id, "kind": kind, "action": action},
            limit=limit,
            offset=offset,
        )
    return DriftPage.model_validate(
        {"data": rows, "meta": page_meta(request, len(rows), total, limit, offset)}
    )


@router.get(
    "/anomalies",
    response_model=AnomalyPage,
    summary="Run and price anomalies, newest first",
    responses=problem_responses(422, 429, 500, 503),
)
def list_anomalies(
    request: Request,
    engine: EngineDep,
    source: SourceFilter = None,
    run_id: RunFilter = None,
    kind: Annotated[AnomalyKind | None, Query(description="Only this kind of anomaly.")] = None,
    asset_id: Annotated[
        str | None,
        Query(min_length=1, max_length=160, pattern=NO_NUL, description="Only this asset."),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AnomalyPage:
    """A finished run is compared with its source's recent successful runs (record count drop,
    duration or error spike), and each canonical asset's price from that source with the other
    sources' median (ANOMALY_PRICE_DEVIATION)."""
    with engine.connect() as conn:
        rows, total = events_queries.events_page(
            conn,
            anomalies,
            equal={"source": source, "run_id": run_id, "kind": kind, "asset_id": asset_id},
            limit=limit,
            offset=offset,
        )
    return AnomalyPage.model_validate(
        {"data": rows, "meta": page_meta(request, len(rows), total, limit, offset)}
    )
