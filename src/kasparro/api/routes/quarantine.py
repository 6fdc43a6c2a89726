"""Quarantine: the records refused, listed and one by one, and their replay (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BeforeValidator

from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.inputs import NO_CONTROL
from kasparro.api.queries import quarantine as quarantine_queries
from kasparro.api.queries.quarantine import QuarantineFilter
from kasparro.api.routes import (
    EngineDep,
    Limit,
    Offset,
    SettingsDep,
    WriteEngineDep,
    page_meta,
)
from kasparro.api.routes.etl import require_admin, source_busy
from kasparro.api.run_schemas import StartedRun, StartedRuns
from kasparro.api.schemas import QuarantinedRecord, QuarantinePage, SourceName
from kasparro.etl.replay import Selection, sources_to_replay, start_replays
from kasparro.etl.runner import SourceBusy
from kasparro.logging import get_logger

router = APIRouter(tags=["quarantine"])
log = get_logger(__name__)

MAX_ID = 2**63 - 1
RunFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=36, pattern=NO_CONTROL, description="Only records of this run."),
]
ReasonFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        pattern=NO_CONTROL,
        description="Only records with this reason_code (`ambiguous_number`, ...).",
    ),
]


def _iso_8601(value: object) -> object:
    """Text in ISO 8601 only: pydantic would read a bare number as a Unix time."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("expected an ISO 8601 date-time, such as 2026-05-01T12:00:00Z")
    return value


When = Annotated[datetime | None, BeforeValidator(_iso_8601)]


def _utc(value: datetime | None) -> datetime | None:
    """Naive means UTC; an instant at the edge of the calendar is clamped, not an error."""
    if value is None or value.tzinfo is None:
        return value.replace(tzinfo=UTC) if value else None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


@router.get(
    "/quarantine",
    response_model=QuarantinePage,
    summary="Quarantined records, newest first",
    responses=problem_responses(422, 429, 500, 503),
)
def list_quarantine(
    request: Request,
    engine: EngineDep,
    source: Annotated[SourceName | None, Query(description="Only this source.")] = None,
    run_id: RunFilter = None,
    reason_code: ReasonFilter = None,
    since: Annotated[
        When, Query(description="Quarantined at or after (ISO 8601; naive means UTC).")
    ] = None,
    until: Annotated[
        When, Query(description="Quarantined at or before (ISO 8601; naive means UTC).")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> QuarantinePage:
    """A record that cannot be read with certainty is kept here with its payload, its reason
    in words and a short `reason_code`, and never stops the records beside it. Once its cause
    is fixed, `POST /quarantine/replay` (or `kasparro etl replay`) loads it."""
    filters = QuarantineFilter(source, run_id, reason_code, _utc(since), _utc(until))
    with engine.connect() as conn:
        rows, total = quarantine_queries.quarantine_page(conn, filters, limit=limit, offset=offset)
    return QuarantinePage.model_validate(
        {"data": rows, "meta": page_meta(request, len(rows), total, limit, offset)}
    )


@router.post(
    "/quarantine/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartedRuns,
    summary="Replay quarantined records",
    dependencies=[Depends(require_admin)],
    responses=problem_responses(401, 403, 409, 422, 429, 500, 503),
)
def replay_quarantine(
    engine: WriteEngineDep,
    settings: SettingsDep,
    source: Annotated[
        list[SourceName] | None,
        Query(
            description="Source to replay (repeatable); none means every source that has "
            "quarantined records."
        ),
    ] = None,
    run_id: RunFilter = None,
    reason_code: ReasonFilter = None,
) -> StartedRuns:
    """Normalizes the selected records again from their stored payloads, after their cause was
    fixed, as a run per source (trigger `replay`; follow /runs). Those that now validate are
    loaded and leave quarantine in the same transaction; the others stay, with their reason
    brought up to date. A source with nothing to replay starts no run; several sources start
    together or not at all: 409 if any of them is running."""
    selection = Selection(run_id=run_id, reason_code=reason_code)
    names = [name for name in sources_to_replay(engine, selection) if not source or name in source]
    try:
        started = start_replays(engine, settings, names, selection) if names else []
    except SourceBusy as exc:
        raise source_busy(exc) from None
    log.info("quarantine_replay_requested", runs=[r.run_id for r in started])
    return StartedRuns(runs=[StartedRun(run_id=r.run_id, source=r.source) for r in started])


@router.get(
    # Digits only: /quarantine/replay is another resource (405 for GET), not a bad id (422).
    "/quarantine/{record_id:int}",
    response_model=QuarantinedRecord,
    summary="One quarantined record",
    responses=problem_responses(404, 422, 429, 500, 503),
)
def get_quarantined(
    engine: EngineDep,
    record_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The record's id.")],
) -> QuarantinedRecord:
    with engine.connect() as conn:
        found = quarantine_queries.quarantined(conn, record_id)
    if found is None:
        raise ProblemError(
            404,
            f"no quarantined record with id {record_id} (replayed, or never quarantined)",
            slug="quarantined-record-not-found",
        )
    return QuarantinedRecord.model_validate(found)
