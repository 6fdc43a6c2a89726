"""ETL runs: list, one, and a comparison of two."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Security
from sqlalchemy.engine import Connection

from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.queries import events as events_queries
from kasparro.api.queries import runs as runs_queries
from kasparro.api.routes import NO_NUL, EngineDep, Limit, Offset, SettingsDep, page_meta
from kasparro.api.routes.etl import api_key_header, is_admin
from kasparro.api.run_schemas import (
    Anomaly,
    AssetChanges,
    CountDelta,
    PriceMove,
    Run,
    RunComparison,
    RunDetail,
    RunPage,
    SourceAssetRef,
)
from kasparro.api.schemas import RunStatus, SourceName
from kasparro.db.schema import anomalies, drift_events

router = APIRouter(tags=["runs"])

RunId = Annotated[str, Path(min_length=1, max_length=36, pattern=NO_NUL, description="Run id.")]
CHANGES_LISTED = 100
MOVES_LISTED = 10


def _run_or_404(
    conn: Connection, run_id: str, param: str = "run_id", *, with_detail: bool = False
) -> dict[str, Any]:
    found = runs_queries.run(conn, run_id, with_detail=with_detail)
    if found is None:
        raise ProblemError(404, f"no run with id {run_id!r} ({param})", slug="run-not-found")
    return found


@router.get(
    "/runs",
    response_model=RunPage,
    summary="ETL runs, newest first",
    responses=problem_responses(422, 429, 500, 503),
)
def list_runs(
    request: Request,
    engine: EngineDep,
    source: Annotated[SourceName | None, Query(description="Only this source.")] = None,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> RunPage:
    with engine.connect() as conn:
        rows, total = runs_queries.runs_page(
            conn, source=source, status=status, limit=limit, offset=offset
        )
    return RunPage.model_validate(
        {
            "data": rows,
            "meta": page_meta(request, len(rows), total, limit, offset),
        }
    )


@router.get(
    "/runs/compare",
    response_model=RunComparison,
    summary="Compare two runs of one source",
    responses=problem_responses(400, 404, 422, 429, 500, 503),
)
def compare_runs(
    engine: EngineDep,
    a: Annotated[str, Query(min_length=1, max_length=36, pattern=NO_NUL, description="Run A.")],
    b: Annotated[str, Query(min_length=1, max_length=36, pattern=NO_NUL, description="Run B.")],
) -> RunComparison:
    """Record counts and durations side by side (`delta` = b - a), and what changed in the data.
    Both runs must be of the same source: runs of two sources share no asset, so every count
    would read as a change (400, naming both sources).

    What a run *observed* is read from `price_history.run_id`: the source assets for which the
    run wrote at least one history row, each with the price of the newest such row (by
    `observed_at`). The loader writes a history row only for an observation it has not stored
    before, so a source asset whose values had not changed since the previous run is not
    "observed" by the later run (`asset_sources.run_id` is no help either: it names the run that
    last *changed* the latest values). Hence:

    - `assets_added`: source assets observed by run b and not by run a;
    - `assets_removed`: source assets observed by run a and not by run b;
    - `largest_price_moves`: source assets observed by both, top 10 by absolute relative change
      from a's price to b's.

    For API sources, whose prices move between runs, this is what appeared and disappeared; a
    re-run of an unchanged file observes nothing new and so "removes" everything: read it with
    the runs' `records_unchanged`.

    When a is the run of the source right before b, the answer is the comparison recorded when
    b finished (`run_changes`, milliseconds however large the runs); a later run that corrects
    one of those observations does not change it. Any other pair is computed on its first
    request (from the index on `price_history.run_id`: the two runs' rows only) and, when both
    runs have finished, stored and read back after that.
    """
    with engine.connect() as conn:
        run_a = _run_or_404(conn, a, "a")
        run_b = _run_or_404(conn, b, "b")
        if run_a["source"] != run_b["source"]:
            raise ProblemError(
                400,
                f"runs of different sources cannot be compared: run a ({a!r}) is of source "
                f"{run_a['source']!r}, run b ({b!r}) of source {run_b['source']!r}",
                slug="runs-of-different-sources",
                sources={"a": run_a["source"], "b": run_b["source"]},
            )
        observed = runs_queries.compare_observations(
            conn, run_a["source"], a, b, listed=CHANGES_LISTED, moves=MOVES_LISTED
        )
        anomalies_a = events_queries.run_events(conn, anomalies, run_a["run_id"])
        anomalies_b = events_queries.run_events(conn, anomalies, run_b["run_id"])

    def delta(key: str) -> CountDelta:
        va, vb = run_a[key], run_b[key]
        return CountDelta(a=va, b=vb, delta=vb - va if va is not None and vb is not None else None)

    def changes(count: int, ids: list[str]) -> AssetChanges:
        items = [SourceAssetRef(source=run_a["source"], source_asset_id=i) for i in ids]
        return AssetChanges(count=count, items=items)

    return RunComparison(
        a=Run.model_validate(run_a),
        b=Run.model_validate(run_b),
        records_processed=delta("records_processed"),
        records_loaded=delta("records_loaded"),
        records_unchanged=delta("records_unchanged"),
        records_quarantined=delta("records_quarantined"),
        duration_ms=delta("duration_ms"),
        assets_added=changes(observed.added_count, observed.added),
        assets_removed=changes(observed.removed_count, observed.removed),
        largest_price_moves=[
            PriceMove(source=run_a["source"], **dataclasses.asdict(move)) for move in observed.moves
        ],
        anomalies_a=[Anomaly.model_validate(row) for row in anomalies_a],
        anomalies_b=[Anomaly.model_validate(row) for row in anomalies_b],
    )


@router.get(
    "/runs/{run_id}",
    response_model=RunDetail,
    summary="One ETL run, with its drift and anomalies",
    responses=problem_responses(404, 422, 429, 500, 503),
)
def get_run(
    engine: EngineDep,
    settings: SettingsDep,
    run_id: RunId,
    key: Annotated[str | None, Security(api_key_header)] = None,
) -> RunDetail:
    """Every recorded column of the run, its error and failure point included (where it failed
    and why), the schema drift it saw and the anomalies found when it finished. With the admin
    key, also the full error detail."""
    with engine.connect() as conn:
        found = _run_or_404(conn, run_id, with_detail=is_admin(settings, key))
        found["drift_events"] = events_queries.run_events(conn, drift_events, run_id)
        found["anomalies"] = events_queries.run_events(conn, anomalies, run_id)
    return RunDetail.model_validate(found)
