"""GET /health: is the database reachable, and how is each enabled source's ETL doing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kasparro.api.errors import problem_responses
from kasparro.api.queries import runs as runs_queries
from kasparro.api.routes import EngineDep, SettingsDep
from kasparro.api.schemas import Health, SourceHealth
from kasparro.etl.runner import enabled_sources
from kasparro.logging import get_logger

router = APIRouter(tags=["health"])
log = get_logger(__name__)


@router.get(
    "/health",
    response_model=Health,
    summary="Service and ETL health",
    responses={
        503: {"model": Health, "description": "The database cannot be reached."},
        **problem_responses(500),
    },
)
def health(engine: EngineDep, settings: SettingsDep) -> Any:
    """200 while the database answers; `etl` says whether any enabled source is failing.

    503 (same shape, `"db": "down"`) when the database cannot be reached. Never rate limited.
    """
    names = enabled_sources(settings)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            runs = runs_queries.source_runs(conn, names)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("health_database_down", error_type=type(exc).__name__)
        down = Health(status="error", db="down", database="disconnected", etl="unknown", sources={})
        return JSONResponse(down.model_dump(mode="json"), status_code=503)

    sources: dict[str, SourceHealth] = {}
    failing = running = False
    for name in names:
        info = runs[name]
        latest = info.latest
        finished = info.latest_finished
        failed = finished is not None and finished["status"] == "failed"
        failing |= failed
        running |= info.running
        sources[name] = SourceHealth(
            last_status=latest["status"] if latest is not None else None,
            last_success_at=info.last_success_at,
            last_failure_at=info.last_failure_at,
            last_error=finished["error"] if failed and finished is not None else None,
        )
    etl = "failing" if failing else "running" if running else "idle"
    return Health(status="ok", db="ok", database="connected", etl=etl, sources=sources)
