"""The console's runs: a filtered list, one run with what it saw, and two runs compared.

The run page and the comparison call the JSON routes' own functions (/runs/{id},
/runs/compare), so the page and its JSON twin cannot disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from kasparro.api.errors import ProblemError
from kasparro.api.inputs import NO_CONTROL
from kasparro.api.queries.runs import stored_comparison
from kasparro.api.routes import EngineDep, SettingsDep
from kasparro.api.routes.runs import CHANGES_LISTED, MOVES_LISTED, RunId, compare_runs, get_run
from kasparro.api.ui import queries
from kasparro.api.ui.render import PREFIX, page
from kasparro.etl.run_changes import previous_run, stored_changes
from kasparro.models import SOURCES

router = APIRouter(prefix=f"{PREFIX}/runs", include_in_schema=False)

PAGE_SIZE = 50
QUARANTINE_SHOWN = 50
STATUSES = ("running", "success", "degraded", "failed", "interrupted")
Text = Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL)]


def parse_time(text: str | None) -> tuple[datetime | None, str | None]:
    """A time from a form field (ISO 8601; naive means UTC), or why it is not one."""
    if not text:
        return None, None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None, f"{text!r} is not a date and time (use 2026-12-01T08:00)"
    return (parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)), None


def error_page(request: Request, problem: ProblemError, title: str) -> HTMLResponse:
    return page(
        request,
        "error.html",
        status_code=problem.status,
        title=title,
        nav="runs",
        message=problem.detail,
    )


@router.get("", response_class=HTMLResponse)
def list_runs(
    request: Request,
    engine: EngineDep,
    source: Text = None,
    status: Text = None,
    trigger: Text = None,
    since: Text = None,
    until: Text = None,
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    start, start_error = parse_time(since)
    end, end_error = parse_time(until)
    errors = [e for e in (start_error, end_error) if e]
    if source and source not in SOURCES:
        errors.append(f"there is no source {source!r}")
    if status and status not in STATUSES:
        errors.append(f"there is no run status {status!r}")
    filters = queries.RunFilter(source or None, status or None, trigger or None, start, end)
    with engine.connect() as conn:
        rows, total = queries.runs_page(
            conn, filters, limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE
        )
        triggers = queries.run_triggers(conn)
    return page(
        request,
        "runs.html",
        title="Runs",
        nav="runs",
        runs=rows,
        total=total,
        page_number=page_number,
        pages=max(1, -(-total // PAGE_SIZE)),
        sources=SOURCES,
        statuses=STATUSES,
        triggers=triggers,
        chosen={
            "source": source or "",
            "status": status or "",
            "trigger": trigger or "",
            "since": since or "",
            "until": until or "",
        },
        errors=errors,
    )


@router.get("/compare", response_class=HTMLResponse)
def compare(
    request: Request,
    engine: EngineDep,
    a: Annotated[str, Query(min_length=1, max_length=36, pattern=NO_CONTROL)],
    b: Annotated[str, Query(min_length=1, max_length=36, pattern=NO_CONTROL)],
) -> HTMLResponse:
    try:
        comparison = compare_runs(engine, a.strip(), b.strip())
    except ProblemError as problem:
        return error_page(request, problem, "Runs cannot be compared")
    with engine.connect() as conn:
        # Where the figures come from, said on the page: B's summary, the pair's stored by its
        # first request (made by compare_runs just now, at the latest), or both runs' rows now.
        recorded = stored_changes(
            conn, a.strip(), b.strip(), listed=CHANGES_LISTED, moves=MOVES_LISTED
        )
        stored = stored_comparison(
            conn, a.strip(), b.strip(), listed=CHANGES_LISTED, moves=MOVES_LISTED
        )
        adjacent = previous_run(conn, b.strip()) == a.strip()
    return page(
        request,
        "compare.html",
        title="Compare runs",
        nav="runs",
        cmp=comparison,
        recorded_at=recorded.computed_at if recorded is not None else None,
        stored_at=stored.computed_at if stored is not None else None,
        adjacent=adjacent,
    )


@router.get("/{run_id}", response_class=HTMLResponse)
def run_page(
    request: Request, engine: EngineDep, settings: SettingsDep, run_id: RunId
) -> HTMLResponse:
    try:
        # Without the key: the page is public, so it shows what /runs/{id} shows anyone.
        run = get_run(engine, settings, run_id, key=None)
    except ProblemError as problem:
        return error_page(request, problem, "Run not found")
    with engine.connect() as conn:
        # Newest first from the index on (run_id, id) (migration 0008).
        held = queries.held_records(conn, source=run.source, run_id=run_id, limit=QUARANTINE_SHOWN)
        # The run before this one, to compare with: the one its stored summary is against.
        previous = previous_run(conn, run.run_id)
    return page(
        request,
        "run.html",
        title=f"Run {run.run_id[:8]}",
        nav="runs",
        run=run,
        quarantined=held,
        quarantined_more=len(held) >= QUARANTINE_SHOWN,
        compare_with=previous,
    )
