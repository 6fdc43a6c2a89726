"""What the console shows only when the API offers it: identity curation actions (engineer B's
/identity endpoints) and the consensus reference price (GET /assets/{id}/price). Each page asks
here, so a deployment without them renders the rest of the page unchanged."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.engine import Connection

from kasparro.api.price_schemas import ReferencePrice
from kasparro.api.queries import prices as prices_queries
from kasparro.api.routes.prices import reference

# The curation endpoints the console can call, by the name its templates use.
CURATION_PATHS = {
    "merge": "/identity/merge",
    "split": "/identity/split",
    "accept": "/identity/reviews/{source}/{source_asset_id}/accept",
    "reject": "/identity/reviews/{source}/{source_asset_id}/reject",
}
PRICE_PATH = "/assets/{asset_id}/price"


def _paths(app: FastAPI) -> set[str]:
    """The API's operations, from its OpenAPI document (built once, then cached by the app)."""
    return set(app.openapi().get("paths", {}))


def curation_actions(app: FastAPI) -> dict[str, bool]:
    """Which curation actions this API offers (the page shows a form for each one it does)."""
    paths = _paths(app)
    return {name: path in paths for name, path in CURATION_PATHS.items()}


def consensus_price(app: FastAPI, conn: Connection, asset_id: str) -> ReferencePrice | None:
    """The asset's newest consensus reference price, as GET /assets/{id}/price answers it;
    None when the API serves none or the asset has none yet."""
    if PRICE_PATH not in _paths(app):
        return None
    row = prices_queries.latest(conn, [asset_id]).get(asset_id)
    return reference(row) if row is not None else None
