"""GET /health: is the database reachable, and how is each enabled source's ETL doing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kasparro import metrics
from kasparro.api.errors import problem_responses
from kasparro.api.queries import runs as runs_queries
from kasparro.api.routes import EngineDep, SettingsDep
from kasparro.api.schemas import Health, SourceHealth
from kasparro.db.schema import asset_sources
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
    """200 while the database answers. `status` is `ok`, or `degraded` when an enabled source's
    latest run failed or it has had no successful run for SOURCE_STALE_SECONDS; each source
    shows its last run and the age of its newest observation (its freshness).

    503 (same shape, `"status": "error"`) when the database cannot be reached. `db`, `database`
    and `etl` are kept for existing clients. Never rate limited.
    """
    names = enabled_sources(settings)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            runs = runs_queries.source_runs(conn, names)
            newest_observations = newest_observation_by_source(conn, names)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("health_database_down", error_type=type(exc).__name__)
        down = Health(status="error", db="down", database="disconnected", etl="unknown", sources={})
        return JSONResponse(down.model_dump(mode="json"), status_code=503)

    now = datetime.now(UTC)
    stale_after = timedelta(seconds=settings.source_stale_seconds)
    sources: dict[str, SourceHealth] = {}
    failing = running = stale = False
    for name in names:
        info = runs[name]
        latest = info.latest
        finished = info.latest_finished
        failed = finished is not None and finished["status"] == "failed"
        # Stale: runs were attempted, and none succeeded lately (a new install is not stale).
        old = latest is not None and (
            info.last_success_at is None or now - info.last_success_at > stale_after
        )
        failing |= failed
        running |= info.running
        stale |= old and not info.running
        newest = newest_observations.get(name)
        if newest is not None:
            metrics.SOURCE_NEWEST_OBSERVATION.labels(name).set(newest.timestamp())
        sources[name] = SourceHealth(
            last_status=latest["status"] if latest is not None else None,
            last_success_at=info.last_success_at,
            last_failure_at=info.last_failure_at,
            last_error=finished["error"] if failed and finished is not None else None,
            newest_observation_at=newest,
            observation_age_seconds=(now - newest).total_seconds() if newest else None,
            stale=old,
        )
    etl = "failing" if failing else "running" if running else "idle"
    status = "degraded" if failing or stale else "ok"
    return Health(status=status, db="ok", database="connected", etl=etl, sources=sources)


def newest_observation_by_source(conn: sa.Connection, names: Sequence[str]) -> dict[str, datetime]:
    """Per source, the newest observed_at among its latest values."""
    rows = conn.execute(
        sa.select(asset_sources.c.source, sa.func.max(asset_sources.c.observed_at))
        .where(asset_sources.c.source.in_(names))
        .group_by(asset_sources.c.source)
    )
    return {source: _utc(newest) for source, newest in rows if newest is not None}


def _utc(value: datetime | str) -> datetime:
    # max() loses the column type on SQLite, which stores naive UTC text.
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
