"""Time series of one asset (candles) and exports of history (CSV, Parquet), streamed."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse

from kasparro import export, models
from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.history_schemas import CandlePage
from kasparro.api.queries import assets as assets_queries
from kasparro.api.queries import candles as candle_queries
from kasparro.api.routes import EngineDep, WriteEngineDep, request_id
from kasparro.api.routes.assets import AssetId, _utc
from kasparro.api.routes.data import json_response

router = APIRouter(tags=["history"])

SourceParam = Annotated[
    str,
    Query(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="A source's name, or `consensus` for the reference price (when this server "
        "computes it).",
    ),
]
MAX_EXPORT_ASSETS = 1000


def _instant(value: datetime | None, default: datetime) -> datetime:
    utc = _utc(value)
    return default if utc is None else utc


def _check_source(source: str) -> None:
    if source != candle_queries.CONSENSUS and source not in models.SOURCES:
        raise ProblemError(
            400,
            f"invalid parameter `source`: no source named {source!r}; one of "
            f"{', '.join(sorted(models.SOURCES))}, or consensus",
            slug="invalid-parameter",
            param="source",
        )


def _cursor(start: datetime, fingerprint: str) -> str:
    raw = orjson.dumps([int(start.timestamp()), fingerprint])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _after(cursor: str, fingerprint: str) -> datetime:
    """The start of the next bucket a cursor points to; 400 if it is not one of ours."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        value = None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int)
        or value[1] != fingerprint
        or not 0 <= value[0] < 10**11
    ):
        raise ProblemError(
            400,
            "invalid parameter `cursor`: not a cursor of this query; use meta.next_cursor of "
            "the previous page, with the same other parameters",
            slug="invalid-cursor",
            param="cursor",
        )
    return datetime.fromtimestamp(value[0], UTC)


@router.get(
    "/assets/{asset_id}/candles",
    response_model=CandlePage,
    summary="OHLC candles of one asset, from one source or the consensus",
    responses=problem_responses(400, 404, 422, 429, 500, 503),
)
def get_candles(
    request: Request,
    engine: EngineDep,
    asset_id: AssetId,
    source: SourceParam,
    interval: Annotated[Literal["1m", "5m", "1h", "1d"], Query(description="Bucket width.")] = "1h",
    start: Annotated[
        datetime | None,
        Query(
            alias="from",
            description="From this instant (ISO 8601; naive means UTC), rounded down to its "
            "bucket. Default: `limit` buckets before `to`.",
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description="Before this instant (exclusive). Default: now."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000, description="Candles per page (1-5000).")] = 1000,
    cursor: Annotated[
        str | None,
        Query(max_length=200, pattern=r"^[A-Za-z0-9_\-]*$", description="meta.next_cursor."),
    ] = None,
) -> Response:
    """Buckets with at least one observation, oldest first, computed by the database: open and
    close are the first and last observation's price, high and low the extremes, and
    `observations` how many there were. One source's candles never mix in another source."""
    _check_source(source)
    width = candle_queries.INTERVALS[interval]
    to = _instant(end, datetime.now(UTC))
    since = _instant(start, to - width * limit)
    # The parameters as sent (a default `to` moves with the clock; the cursor must not).
    fingerprint = f"{asset_id}|{source}|{interval}|{start}|{end}"
    if cursor:
        since = max(since, _after(cursor, fingerprint))
    with engine.connect() as conn:
        if not assets_queries.asset_exists(conn, asset_id):
            raise ProblemError(404, f"no asset with asset_id {asset_id!r}", slug="asset-not-found")
        if source == candle_queries.CONSENSUS and not candle_queries.has_consensus(conn):
            raise ProblemError(
                404,
                "this server keeps no consensus reference prices (its database has no "
                "reference_prices table): ask for one source's candles",
                slug="consensus-unavailable",
            )
        rows = candle_queries.candles(
            conn, asset_id, source=source, width=width, start=since, end=to, limit=limit + 1
        )
    page = rows[:limit]
    next_cursor = _cursor(page[-1].start + width, fingerprint) if len(rows) > limit else None
    # Up to 5,000 candles: written by orjson, with no Pydantic model per candle (CandlePage
    # documents the shape; the tests validate against it).
    return json_response(
        {
            "asset_id": asset_id,
            "source": source,
            "interval": interval,
            "data": [
                {
                    "start": c.start,
                    "end": c.start + width,
                    "open": c.open,
                    "high": c.high,
                    "low": c.low,
                    "close": c.close,
                    "volume_24h_usd": c.volume_24h_usd,
                    "observations": c.observations,
                    "first_observed_at": c.first_observed_at,
                    "last_observed_at": c.last_observed_at,
                }
                for c in page
            ],
            "meta": {
                "request_id": request_id(request),
                "limit": limit,
                "count": len(page),
                "next_cursor": next_cursor,
            },
        }
    )


@router.get(
    "/export/history",
    summary="Price history as a CSV or Parquet file, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file, streamed (no Content-Length). CSV: RFC 4180, a header "
            "line, times in ISO 8601 UTC; text cells that begin with =, +, -, @, tab or CR are "
            "prefixed with ' (spreadsheet formula injection); numbers are never altered.",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        },
        **problem_responses(400, 422, 429, 500, 503),
    },
)
def export_history(
    engine: WriteEngineDep,
    start: Annotated[
        datetime, Query(alias="from", description="Observed at or after (ISO 8601; naive: UTC).")
    ],
    end: Annotated[datetime, Query(alias="to", description="Observed before (exclusive).")],
    source: Annotated[
        str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Only this source.")
    ] = None,
    asset_id: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_EXPORT_ASSETS,
            description=f"Only these canonical assets (repeat the parameter; up to "
            f"{MAX_EXPORT_ASSETS}).",
        ),
    ] = None,
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
) -> StreamingResponse:
    """Rows ordered by observed_at, then source and source asset; any size, in flat memory."""
    if source is not None:
        _check_source(source)
        if source == candle_queries.CONSENSUS:
            raise ProblemError(
                400, "invalid parameter `source`: exports are of sources' history", param="source"
            )
    ids = tuple(dict.fromkeys(asset_id or ()))
    if any(not 0 < len(i) <= 160 for i in ids):  # control characters: refused by middleware
        raise ProblemError(
            400, "invalid parameter `asset_id`: 1 to 160 characters each", param="asset_id"
        )
    job = export.HistoryExport(
        start=_instant(start, start), end=_instant(end, end), source=source, asset_ids=ids
    )
    if job.end <= job.start:
        raise ProblemError(400, "invalid parameters: `to` must be after `from`", param="to")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401 - only whether it is installed
        except ImportError:
            raise ProblemError(
                503, str(export.ParquetUnavailable()), slug="parquet-unavailable"
            ) from None
    chunks = export.stream(engine, job, fmt)
    name = f"kasparro-history-{job.start:%Y%m%dT%H%M%SZ}-{job.end:%Y%m%dT%H%M%SZ}.{fmt}"
    return StreamingResponse(
        chunks,
        media_type=export.media_type(fmt),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
