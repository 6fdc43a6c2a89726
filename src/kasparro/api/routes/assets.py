"""Canonical assets with their per-source prices and a consensus price, and their history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.inputs import NO_CONTROL
from kasparro.api.queries import assets as assets_queries
from kasparro.api.queries import prices as prices_queries
from kasparro.api.routes import EngineDep, Limit, Offset, moved_to, page_meta, request_id
from kasparro.api.routes.data import json_response
from kasparro.api.schemas import Asset, AssetHistory, AssetPage, SourceName

router = APIRouter(tags=["assets"])

AssetId = Annotated[
    str, Path(min_length=1, max_length=160, pattern=NO_CONTROL, description="Canonical asset id.")
]


def _asset(head: dict[str, Any], reference: dict[str, Any] | None) -> Asset:
    """`reference`: the asset's newest consensus row (GET /assets/{id}/price), if any. Never a
    plain median of the latest prices: one stale, frozen or 1000x-off source would move it."""
    prices = head["prices"]
    return Asset(
        asset_id=head["asset_id"],
        symbol=head["symbol"],
        name=head["name"],
        consensus_price_usd=reference["price_usd"] if reference else None,
        consensus_status=reference["status"] if reference else None,
        consensus_as_of=reference["as_of"] if reference else None,
        source_count=len(prices),
        prices=prices,
        members=head["members"],
    )


def _not_found(asset_id: str) -> ProblemError:
    return ProblemError(404, f"no asset with asset_id {asset_id!r}", slug="asset-not-found")


def _utc(value: datetime | None) -> datetime | None:
    """Naive means UTC; an instant at the edge of the calendar is clamped, not an error."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


@router.get(
    "/assets",
    response_model=AssetPage,
    summary="Canonical assets with per-source and consensus prices",
    responses=problem_responses(422, 429, 500, 503),
)
def list_assets(
    request: Request,
    engine: EngineDep,
    limit: Limit = 100,
    offset: Offset = 0,
    symbol: Annotated[
        str | None,
        Query(max_length=64, pattern=NO_CONTROL, description="Ticker, case-insensitive."),
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_CONTROL, description="Name contains (case-insensitive)."),
    ] = None,
) -> AssetPage:
    """Ordered by asset_id. `consensus_price_usd` is the asset's consensus reference price
    (its status and as-of time beside it; the whole computation at GET /assets/{id}/price)."""
    with engine.connect() as conn:
        heads, total = assets_queries.assets_page(
            conn,
            symbol=symbol.upper() if symbol is not None else None,
            q=q,
            limit=limit,
            offset=offset,
        )
        references = prices_queries.latest(conn, [head["asset_id"] for head in heads])
    data = [_asset(head, references.get(head["asset_id"])) for head in heads]
    return AssetPage.model_validate(
        {
            "data": data,
            "meta": page_meta(request, len(data), total, limit, offset),
        }
    )


@router.get(
    "/assets/{asset_id}",
    response_model=Asset,
    summary="One canonical asset",
    responses={
        308: {"description": "The asset was merged into another: Location names it."},
        **problem_responses(404, 422, 429, 500, 503),
    },
)
def get_asset(request: Request, engine: EngineDep, asset_id: AssetId) -> Asset | Response:
    """With its members and how each was linked. An asset merged into another answers 308
    with the other's URL, so old links keep working."""
    with engine.connect() as conn:
        head = assets_queries.asset(conn, asset_id)
        target = assets_queries.redirect_target(conn, asset_id) if head is None else None
        reference = prices_queries.latest(conn, [asset_id]).get(asset_id) if head else None
    if target is not None:
        return moved_to(request, "get_asset", target)
    if head is None:
        raise _not_found(asset_id)
    return _asset(head, reference)


@router.get(
    "/assets/{asset_id}/history",
    response_model=AssetHistory,
    summary="Price history of one canonical asset",
    responses={
        308: {"description": "The asset was merged into another: Location names its history."},
        **problem_responses(404, 422, 429, 500, 503),
    },
)
def get_history(
    request: Request,
    engine: EngineDep,
    asset_id: AssetId,
    source: Annotated[SourceName | None, Query(description="Only this source.")] = None,
    start: Annotated[
        datetime | None,
        Query(alias="from", description="Observed at or after (ISO 8601; naive means UTC)."),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description="Observed at or before (ISO 8601; naive means UTC)."),
    ] = None,
    limit: Limit = 100,
) -> Response:
    """Rows newest first, then by source. An empty range (`from` after `to`) returns no rows.
    A merged asset answers 308 to the history of the asset it joined (which holds its rows)."""
    # Up to thousands of rows: written by orjson from the query's values, with no Pydantic
    # model per row (AssetHistory documents the shape; the tests validate against it).
    with engine.connect() as conn:
        if not assets_queries.asset_exists(conn, asset_id):
            target = assets_queries.redirect_target(conn, asset_id)
            if target is not None:
                return moved_to(request, "get_history", target)
            raise _not_found(asset_id)
        rows = assets_queries.asset_history(
            conn, asset_id, source=source, start=_utc(start), end=_utc(end), limit=limit
        )
    return json_response(
        {
            "asset_id": asset_id,
            "data": rows,
            "meta": {"request_id": request_id(request), "limit": limit, "count": len(rows)},
        }
    )
