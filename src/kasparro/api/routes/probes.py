"""GET /livez and GET /readyz: the probes an orchestrator acts on.

- /livez: the process answers HTTP. It never touches the database, so a database outage makes
  pods unready (out of the load balancer) but never restarts them.
- /readyz: the database answers AND its schema is at the migrations' head; otherwise 503 with a
  short problem document naming which. A new image waiting for its migration job stays unready
  instead of serving against a schema it does not know.

Both are never rate limited; neither says anything about the ETL (that is /health's job).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import Response

from kasparro.api.errors import problem_response, problem_responses
from kasparro.api.routes import EngineDep
from kasparro.api.schemas import ProbeStatus, Problem
from kasparro.db.migrate import alembic_config
from kasparro.logging import get_logger

router = APIRouter(tags=["probes"])
log = get_logger(__name__)

PROBE_PATHS = frozenset({"/livez", "/readyz"})
_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Problem,
        "description": "Not ready: the database cannot be reached, or its schema is not at the "
        "latest migration (run `kasparro db upgrade`, or the migrate service/Job).",
    }
}


@cache
def migration_heads() -> frozenset[str]:
    """The head revision(s) this code's migrations end at (read once from the package)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads())


@router.get(
    "/livez",
    summary="Liveness: the process answers",
    response_model=ProbeStatus,
    responses=problem_responses(500),
)
async def livez() -> dict[str, str]:
    """200 `{"status": "ok"}` whenever the server can answer at all; touches nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable and migrated",
    response_model=ProbeStatus,
    responses={**_NOT_READY, **problem_responses(500)},
)
def readyz(request: Request, engine: EngineDep) -> Any:
    """200 `{"status": "ready"}` when the database answers and is at the migrations' head."""
    try:
        with engine.connect() as conn:
            current = _current_revisions(conn)
    except sa.exc.SQLAlchemyError as exc:
        # The driver's message may name hosts and users: its type is logged, nothing is sent.
        log.warning("readyz_database_down", error_type=type(exc).__name__)
        return _not_ready(request, "database-unavailable", "the database cannot be reached")
    heads = migration_heads()
    if current != heads:
        log.warning("readyz_schema_not_at_head", current=sorted(current), heads=sorted(heads))
        return _not_ready(
            request,
            "migrations-pending",
            f"the database schema is at {', '.join(sorted(current)) or 'no revision'}, "
            f"this version needs {', '.join(sorted(heads))}: run the migrations",
        )
    return {"status": "ready"}


def _current_revisions(conn: sa.Connection) -> frozenset[str]:
    if not sa.inspect(conn).has_table("alembic_version"):
        return frozenset()
    return frozenset(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def _not_ready(request: Request, slug: str, detail: str) -> Response:
    return problem_response(
        request.scope,
        503,
        detail,
        slug=slug,
        title="Not ready",
        headers={"Retry-After": "5"},
    )
