"""Route modules, one per area, and what they share: the engine, the settings, the request id."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import RedirectResponse
from sqlalchemy.engine import Engine

from kasparro.api.errors import request_id_of
from kasparro.api.inputs import NO_CONTROL
from kasparro.config import Settings

# Text parameters refuse control characters (PostgreSQL cannot store or compare NUL; no stored
# text holds any): the middleware answers 400 before a route sees one, the pattern says so.
NO_NUL = NO_CONTROL  # the former name, still imported by some routes
MAX_OFFSET = 1_000_000_000


# Dependencies are `async def` so FastAPI does not hop to a worker thread to call them.
async def get_engine(request: Request) -> Engine:
    """The engine for reads (autocommit on PostgreSQL: no BEGIN/ROLLBACK round trips; a read
    whose connection died is run again on a fresh one, see kasparro.db.retry)."""
    engine: Engine = request.app.state.read_engine
    return engine


async def get_write_engine(request: Request) -> Engine:
    """The engine itself, for what writes (the ETL's transactions)."""
    engine: Engine = request.app.state.engine
    return engine


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def request_id(request: Request) -> str:
    return request_id_of(request.scope)


def page_meta(request: Request, count: int, total: int, limit: int, offset: int) -> dict[str, Any]:
    """The `meta` of an offset-paged list response."""
    return {
        "request_id": request_id(request),
        "limit": limit,
        "offset": offset,
        "count": count,
        "total": total,
    }


def elapsed_ms(request: Request) -> float:
    started = request.scope.get("state", {}).get("started")
    if not isinstance(started, float):
        return 0.0
    return round((time.perf_counter() - started) * 1000, 3)


EngineDep = Annotated[Engine, Depends(get_engine)]
WriteEngineDep = Annotated[Engine, Depends(get_write_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (1-1000).")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]


def moved_to(request: Request, route: str, target: str) -> RedirectResponse:
    """308 to the same route of the asset a merged one joined, with the same query: old links
    keep working (identity curation, docs/identity.md)."""
    url = request.url_for(route, asset_id=target).include_query_params(**request.query_params)
    return RedirectResponse(str(url.replace(scheme="", netloc="")), status_code=308)
