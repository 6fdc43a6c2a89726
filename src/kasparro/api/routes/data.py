"""GET /data: the latest values of every source asset, filtered and paginated.

The hot endpoint, without a Pydantic round trip (the response model still documents the shape,
and the tests validate against it). On PostgreSQL it runs on the event loop with psycopg's async
pool, and the database writes the rows' JSON, spliced into the body unchanged; on SQLite rows go
from the driver straight into orjson, in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import Engine

from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.inputs import NO_CONTROL, is_clean_text
from kasparro.api.queries import data as data_queries
from kasparro.api.routes import Limit, elapsed_ms, request_id
from kasparro.api.schemas import DataPage, SourceName
from kasparro.db.retry import read_async

router = APIRouter(tags=["data"])

JSON_OPTIONS = orjson.OPT_UTC_Z


def encode_cursor(last: tuple[str, str], fingerprint: str) -> str:
    raw = orjson.dumps([last[0], last[1], fingerprint])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, fingerprint: str) -> tuple[str, str]:
    """The (source, source_asset_id) a cursor points after; ProblemError 400 if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        value = None
    # Its text reaches the database: a forged cursor may hold what PostgreSQL refuses (NUL).
    if not (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(part, str) and is_clean_text(part) for part in value)
    ):
        raise ProblemError(
            400,
            "invalid parameter `cursor`: not a cursor this API issued; "
            "use meta.next_cursor from a previous page",
            slug="invalid-cursor",
            param="cursor",
        )
    if value[2] != fingerprint:
        raise ProblemError(
            400,
            "invalid parameter `cursor`: it was issued for other filters; "
            "send the same source, symbol, asset_id and q as the page it came from",
            slug="invalid-cursor",
            param="cursor",
        )
    return value[0], value[1]


def json_response(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body, option=JSON_OPTIONS), media_type="application/json")


@router.get(
    "/data",
    response_model=DataPage,
    summary="Unified latest rows per source asset",
    responses=problem_responses(400, 422, 429, 500, 503),
)
async def get_data(
    request: Request,
    limit: Limit = 100,
    offset: Annotated[
        int | None,
        Query(ge=0, le=1_000_000_000, description="Rows to skip; not together with `cursor`."),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=2048,
            pattern=r"^[A-Za-z0-9_\-]*$",
            description="Opaque keyset cursor: meta.next_cursor of the previous page.",
        ),
    ] = None,
    source: Annotated[SourceName | None, Query(description="Only this source.")] = None,
    symbol: Annotated[
        str | None,
        Query(max_length=64, pattern=NO_CONTROL, description="Ticker, case-insensitive."),
    ] = None,
    asset_id: Annotated[
        str | None, Query(max_length=160, pattern=NO_CONTROL, description="Canonical asset id.")
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_CONTROL, description="Name contains (case-insensitive)."),
    ] = None,
) -> Response:
    """Rows in a stable order, (source, source_asset_id). Deep pages: follow `next_cursor`."""
    filters = data_queries.DataFilters(
        source=source, symbol=symbol.upper() if symbol is not None else None, asset_id=asset_id, q=q
    )
    fingerprint = filters.fingerprint()
    after = None
    if cursor:
        if offset is not None:
            raise ProblemError(
                400,
                "parameters `cursor` and `offset` cannot be used together",
                slug="conflicting-parameters",
                param="offset",
            )
        after = decode_cursor(cursor, fingerprint)
    pool = request.app.state.read_pool
    if pool is not None:
        return await _data_from_postgres(request, pool, filters, fingerprint, limit, offset, after)
    # No engine dependency: FastAPI would resolve it for every request, and PostgreSQL needs none.
    engine: Engine = request.app.state.read_engine
    return await run_in_threadpool(
        _data_from_engine, request, engine, filters, fingerprint, limit, offset, after
    )


def _data_from_engine(
    request: Request,
    engine: Engine,
    filters: data_queries.DataFilters,
    fingerprint: str,
    limit: int,
    offset: int | None,
    after: tuple[str, str] | None,
) -> Response:
    """The page through SQLAlchemy: rows from the driver straight into orjson (SQLite)."""
    with engine.connect() as conn:
        rows, more, total = data_queries.data_page(
            conn,
            filters,
            limit=limit,
            offset=offset or 0,
            after=after,
            totals=request.app.state.data_totals,
        )
    next_cursor = (
        encode_cursor((rows[-1]["source"], rows[-1]["source_asset_id"]), fingerprint)
        if more and rows
        else None
    )
    meta = _meta(request, limit, offset, len(rows), total, next_cursor)
    return json_response({"data": rows, "meta": meta})


def _meta(
    request: Request,
    limit: int,
    offset: int | None,
    count: int,
    total: int,
    next_cursor: str | None,
) -> dict[str, Any]:
    return {
        "request_id": request_id(request),
        "api_latency_ms": elapsed_ms(request),
        "limit": limit,
        "offset": offset or 0,
        "count": count,
        "total": total,
        "next_cursor": next_cursor,
    }


async def _data_from_postgres(
    request: Request,
    pool: AsyncConnectionPool,
    filters: data_queries.DataFilters,
    fingerprint: str,
    limit: int,
    offset: int | None,
    after: tuple[str, str] | None,
) -> Response:
    """The same page, its rows serialized by PostgreSQL and spliced into the body unchanged;
    on the event loop, with no worker thread (once more on a fresh connection if its died)."""
    page = await read_async(
        pool,
        lambda conn: data_queries.data_page_json(
            conn,
            filters,
            limit=limit,
            offset=offset or 0,
            after=after,
            totals=request.app.state.data_totals,
        ),
    )
    next_cursor = encode_cursor(page.last, fingerprint) if page.last else None
    meta = _meta(request, limit, offset, page.count, page.total, next_cursor)
    body = b'{"data":[' + page.rows_json.encode() + b'],"meta":' + orjson.dumps(meta) + b"}"
    return Response(body, media_type="application/json")
