"""The console's assets: search by ticker or name, and one asset with its sources, its
consensus price, its members and its price history chart."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from kasparro.api.inputs import NO_CONTROL
from kasparro.api.queries import assets as assets_queries
from kasparro.api.routes import EngineDep
from kasparro.api.routes.assets import AssetId
from kasparro.api.ui import extensions, queries
from kasparro.api.ui.render import PREFIX, page, utc

router = APIRouter(prefix=f"{PREFIX}/assets", include_in_schema=False)

RESULTS = 50
# Enough points for a readable chart and a light page: the newest rows of the range.
CHART_ROWS = 3000
RANGES = {
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "1y": timedelta(days=365),
    "all": None,
}


def chart_series(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """History rows (any order) as uPlot's aligned columns: one x axis (Unix seconds, oldest
    first) and one price column per source, null where that source has no point."""
    sources = sorted({row["source"] for row in rows})
    column = {name: index for index, name in enumerate(sources)}
    by_time: dict[float, list[float | None]] = {}
    for row in rows:
        moment = utc(row["observed_at"])
        if moment is None:
            continue
        slot = by_time.setdefault(moment.timestamp(), [None] * len(sources))
        slot[column[row["source"]]] = row["price_usd"]
    times = sorted(by_time)
    return {
        "sources": sources,
        "x": times,
        "y": [[by_time[t][i] for t in times] for i in range(len(sources))],
    }


@router.get("", response_class=HTMLResponse)
def search(
    request: Request,
    engine: EngineDep,
    q: Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL)] = None,
    names: Annotated[bool, Query()] = False,
    anywhere: Annotated[bool, Query()] = False,
) -> HTMLResponse:
    """The ticker first, exactly (case-insensitive, by its index); then names starting with the
    text (by the index on lower(name)) when no ticker matches or when asked (`names`); names
    containing it anywhere only when asked (`anywhere`): that reads every asset's name."""
    text = (q or "").strip()
    found: dict[str, dict[str, Any]] = {}
    searched_names = False
    with engine.connect() as conn:
        if text:
            for head in queries.find_assets(conn, symbol=text.upper(), limit=RESULTS):
                found[head["asset_id"]] = head
            if names or anywhere or not found:
                searched_names = True
                by_name = (
                    queries.find_assets(conn, name_inside=text, limit=RESULTS)
                    if anywhere
                    else queries.find_assets(conn, name_start=text, limit=RESULTS)
                )
                for head in by_name:
                    found.setdefault(head["asset_id"], head)
        else:
            found = {head["asset_id"]: head for head in queries.find_assets(conn, limit=RESULTS)}
    for head in found.values():
        head["median"] = statistics.median(head["prices"]) if head["prices"] else None
    return page(
        request,
        "assets.html",
        title="Assets",
        nav="assets",
        q=text,
        results=list(found.values())[:RESULTS],
        limit=RESULTS,
        searched_names=searched_names,
        anywhere=anywhere,
    )


@router.get("/{asset_id}", response_class=HTMLResponse)
def asset_page(
    request: Request,
    engine: EngineDep,
    asset_id: AssetId,
    range_name: Annotated[str, Query(alias="range", pattern="^(1d|7d|30d|1y|all)$")] = "all",
) -> Response:
    span = RANGES[range_name]
    start = datetime.now(UTC) - span if span is not None else None
    with engine.connect() as conn:
        asset = assets_queries.asset(conn, asset_id)  # what GET /assets/{id} answers
        if asset is None:
            target = _merged_into(conn, asset_id)
            if target is not None:
                return RedirectResponse(f"{request.url.path.rsplit('/', 1)[0]}/{target}", 303)
            return page(
                request,
                "error.html",
                status_code=404,
                title="Asset not found",
                nav="assets",
                message=f"no asset with asset_id {asset_id!r}",
            )
        # Members with how each was linked: the API's own when it lists them.
        members = asset.get("members") or queries.asset_members(conn, asset_id)
        history = assets_queries.asset_history(
            conn, asset_id, source=None, start=start, end=None, limit=CHART_ROWS
        )
        consensus = extensions.consensus_price(request.app, conn, asset_id)
    prices = [p["price_usd"] for p in asset["prices"]]
    return page(
        request,
        "asset.html",
        title=f"{asset['name']} ({asset['symbol'] or 'no ticker'})",
        nav="assets",
        asset=asset,
        median=statistics.median(prices) if prices else None,
        members=members,
        consensus=consensus,
        chart=chart_series(history),
        history_rows=len(history),
        history_capped=len(history) >= CHART_ROWS,
        ranges=list(RANGES),
        range_name=range_name,
        curation=extensions.curation_actions(request.app),
    )


def _merged_into(conn: Connection, asset_id: str) -> str | None:
    """Where an asset merged into another lives now (identity curation), if it was."""
    find = getattr(assets_queries, "redirect_target", None)
    return find(conn, asset_id) if find is not None else None
