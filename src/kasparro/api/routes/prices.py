"""Consensus reference prices: one asset's, several at once, one asset's history, and computing
them now (admin). The method: docs/methodology.md."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import StringConstraints

from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.inputs import NO_CONTROL
from kasparro.api.price_schemas import (
    ConsensusComputed,
    PriceHistory,
    PriceList,
    ReferencePrice,
)
from kasparro.api.queries import assets as assets_queries
from kasparro.api.queries import prices as prices_queries
from kasparro.api.routes import (
    EngineDep,
    Limit,
    SettingsDep,
    WriteEngineDep,
    moved_to,
    request_id,
)
from kasparro.api.routes.etl import require_admin
from kasparro.consensus.refresh import compute_now
from kasparro.consensus.store import priced_assets
from kasparro.logging import get_logger

router = APIRouter(tags=["prices"])
log = get_logger(__name__)

MAX_ASSETS = 100
AssetId = Annotated[
    str, Path(min_length=1, max_length=160, pattern=NO_CONTROL, description="Canonical asset id.")
]
# One id in a repeated parameter: the constraints apply to each value.
OneAssetId = Annotated[str, StringConstraints(min_length=1, max_length=160, pattern=NO_CONTROL)]
AssetIds = Annotated[
    list[OneAssetId],
    Query(
        min_length=1,
        max_length=MAX_ASSETS,
        description=f"Canonical asset id (repeatable, 1-{MAX_ASSETS}).",
    ),
]


def reference(row: dict[str, Any]) -> ReferencePrice:
    constituents = row["constituents"]
    return ReferencePrice(
        asset_id=row["asset_id"],
        as_of=row["as_of"],
        status=row["status"],
        price_usd=row["price_usd"],
        dispersion_bps=row["dispersion_bps"],
        single_source=row["single_source"],
        sources_used=row["sources_used"],
        sources_total=row["sources_total"],
        computed_at=row["computed_at"],
        used=[c for c in constituents if c["reason"] is None],
        excluded=[c for c in constituents if c["reason"] is not None],
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


def _fingerprint(start: datetime | None, end: datetime | None) -> str:
    return f"{start.isoformat() if start else ''}|{end.isoformat() if end else ''}"


def _encode_cursor(as_of: datetime, fingerprint: str) -> str:
    raw = orjson.dumps([as_of.isoformat(), fingerprint])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: str, fingerprint: str) -> datetime:
    """The as-of time a cursor points before; ProblemError 400 if it is not ours."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(value[0]) if isinstance(value, list) else None
    except (binascii.Error, ValueError, TypeError, IndexError, orjson.JSONDecodeError):
        when = None
    if when is None or when.tzinfo is None or len(value) != 2:
        raise ProblemError(
            400,
            "invalid parameter `cursor`: not a cursor this API issued; "
            "use meta.next_cursor from a previous page",
            slug="invalid-cursor",
            param="cursor",
        )
    if value[1] != fingerprint:
        raise ProblemError(
            400,
            "invalid parameter `cursor`: it was issued for another `from` and `to`; "
            "send the same ones as the page it came from",
            slug="invalid-cursor",
            param="cursor",
        )
    return when


@router.get(
    "/assets/{asset_id}/price",
    response_model=ReferencePrice,
    summary="The consensus reference price of one asset",
    responses={
        308: {"description": "The asset was merged into another: Location names its price."},
        **problem_responses(404, 422, 429, 500, 503),
    },
)
def get_price(request: Request, engine: EngineDep, asset_id: AssetId) -> ReferencePrice | Response:
    """The newest reference price: its value, dispersion, the constituents used (with their
    weights) and those excluded (with their reasons), and the time it is as of. Computed after
    each ETL run for the assets it changed, and by POST /consensus/compute. 404 for an unknown
    asset, and for one with no reference price yet (`no-reference-price`)."""
    with engine.connect() as conn:
        row = prices_queries.latest(conn, [asset_id]).get(asset_id)
        if row is None and not assets_queries.asset_exists(conn, asset_id):
            target = assets_queries.redirect_target(conn, asset_id)
            if target is not None:
                return moved_to(request, "get_price", target)
            raise _not_found(asset_id)
    if row is None:
        raise ProblemError(
            404,
            f"asset {asset_id!r} has no reference price yet: it is computed after each ETL run "
            "that observes the asset, and by POST /consensus/compute",
            slug="no-reference-price",
        )
    return reference(row)


@router.get(
    "/prices",
    response_model=PriceList,
    summary="The reference prices of several assets",
    responses=problem_responses(422, 429, 500, 503),
)
def get_prices(request: Request, engine: EngineDep, asset_id: AssetIds) -> PriceList:
    """The newest reference price of each `asset_id` (repeat the parameter), in the order
    requested; ids with none (unknown, or not computed yet) are listed in `meta.missing`. The id
    of an asset merged into another gets that asset's price in its place (`meta.merged`)."""
    wanted = list(dict.fromkeys(asset_id))
    with engine.connect() as conn:
        rows = prices_queries.latest(conn, wanted)
        merged = assets_queries.redirect_targets(conn, [a for a in wanted if a not in rows])
        rows |= prices_queries.latest(conn, [t for t in merged.values() if t not in rows])
    found = [merged.get(a, a) for a in wanted]
    data = [reference(rows[a]) for a in dict.fromkeys(found) if a in rows]
    return PriceList.model_validate(
        {
            "data": data,
            "meta": {
                "request_id": request_id(request),
                "count": len(data),
                "missing": [a for a, f in zip(wanted, found, strict=True) if f not in rows],
                "merged": merged,
            },
        }
    )


@router.get(
    "/assets/{asset_id}/price/history",
    response_model=PriceHistory,
    summary="The reference price history of one asset",
    responses={
        308: {"description": "The asset was merged into another: Location names its history."},
        **problem_responses(400, 404, 422, 429, 500, 503),
    },
)
def get_price_history(
    request: Request,
    engine: EngineDep,
    asset_id: AssetId,
    start: Annotated[
        datetime | None,
        Query(alias="from", description="As of this time or later (ISO 8601; naive means UTC)."),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(alias="to", description="As of this time or earlier (ISO 8601; naive means UTC)."),
    ] = None,
    limit: Limit = 100,
    cursor: Annotated[
        str | None,
        Query(
            max_length=2048,
            pattern=r"^[A-Za-z0-9_\-]*$",
            description="Opaque keyset cursor: meta.next_cursor of the previous page.",
        ),
    ] = None,
) -> PriceHistory | Response:
    """Newest first, a row per as-of time (each computation that found new observations).
    Deep pages: follow `next_cursor`. An empty range (`from` after `to`) returns no rows."""
    start, end = _utc(start), _utc(end)
    fingerprint = _fingerprint(start, end)
    before = _decode_cursor(cursor, fingerprint) if cursor else None
    with engine.connect() as conn:
        if not assets_queries.asset_exists(conn, asset_id):
            target = assets_queries.redirect_target(conn, asset_id)
            if target is not None:
                return moved_to(request, "get_price_history", target)
            raise _not_found(asset_id)
        rows = prices_queries.history(
            conn, asset_id, start=start, end=end, before=before, limit=limit
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return PriceHistory.model_validate(
        {
            "asset_id": asset_id,
            "data": [reference(row) for row in rows],
            "meta": {
                "request_id": request_id(request),
                "limit": limit,
                "count": len(rows),
                "next_cursor": _encode_cursor(rows[-1]["as_of"], fingerprint) if more else None,
            },
        }
    )


@router.post(
    "/consensus/compute",
    response_model=ConsensusComputed,
    summary="Compute reference prices now",
    dependencies=[Depends(require_admin)],
    responses=problem_responses(400, 401, 403, 404, 422, 429, 500, 503),
)
def post_compute(
    engine: WriteEngineDep,
    settings: SettingsDep,
    asset_id: Annotated[
        list[OneAssetId] | None,
        Query(
            max_length=MAX_ASSETS,
            description="Only these assets (repeatable); none means every asset with a price.",
        ),
    ] = None,
) -> ConsensusComputed:
    """Computes and stores the reference price of every asset with a source price (or of
    `asset_id`), as of each one's newest observation, and answers when done (seconds for tens
    of thousands of assets). A row is rewritten only when its content changed. 404 when an
    `asset_id` has no source price."""
    if asset_id:
        with engine.connect() as conn:
            missing = sorted(set(asset_id) - set(priced_assets(conn, asset_id)))
        if missing:
            raise ProblemError(
                404,
                f"no source price for asset_id {', '.join(map(repr, missing))} (unknown, or "
                "never priced)",
                slug="asset-not-found",
                param="asset_id",
            )
    summary = compute_now(engine, settings, asset_id or None)
    log.info("consensus_compute_requested", assets=summary.assets, written=summary.written)
    return ConsensusComputed(
        assets=summary.assets,
        written=summary.written,
        statuses=summary.statuses,
        single_source=summary.single_source,
        seconds=round(summary.seconds, 3),
    )
