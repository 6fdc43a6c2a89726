"""/assets: canonical assets, their latest prices and their history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import chunks, contains, count_rows
from kasparro.db.schema import (
    asset_sources,
    assets,
    identity_audit,
    identity_pins,
    identity_redirects,
    price_history,
)

HISTORY_COLUMNS = (
    price_history.c.source,
    price_history.c.source_asset_id,
    price_history.c.observed_at,
    price_history.c.price_usd,
    price_history.c.market_cap_usd,
    price_history.c.volume_24h_usd,
    price_history.c.ingested_at,
    price_history.c.run_id,
)
HISTORY_KEYS = tuple(str(c.key).encode().decode() for c in HISTORY_COLUMNS)


def _asset_where(symbol: str | None, q: str | None) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if symbol is not None:
        where.append(assets.c.symbol == symbol)
    if q:
        where.append(contains(assets.c.name, q))
    return where


def assets_page(
    conn: Connection, *, symbol: str | None, q: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = _asset_where(symbol, q)
    rows = conn.execute(
        sa.select(assets.c.asset_id, assets.c.symbol, assets.c.name)
        .where(*where)
        .order_by(assets.c.asset_id)
        .limit(limit)
        .offset(offset)
    ).all()
    heads = [row._asdict() for row in rows]
    _attach_prices(conn, heads)
    return heads, count_rows(conn, assets, where)


def asset(conn: Connection, asset_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(assets.c.asset_id, assets.c.symbol, assets.c.name).where(
            assets.c.asset_id == asset_id
        )
    ).first()
    if row is None:
        return None
    head = row._asdict()
    _attach_prices(conn, [head])
    return head


def asset_exists(conn: Connection, asset_id: str) -> bool:
    return (
        conn.scalar(sa.select(assets.c.asset_id).where(assets.c.asset_id == asset_id)) is not None
    )


def _attach_prices(conn: Connection, heads: list[dict[str, Any]]) -> None:
    """Each asset's per-source latest prices, and its members with how each was linked."""
    by_id: dict[str, list[Any]] = {h["asset_id"]: [] for h in heads}
    for part in chunks(list(by_id), 500):
        rows = conn.execute(
            sa.select(
                asset_sources.c.asset_id,
                asset_sources.c.source,
                asset_sources.c.source_asset_id,
                asset_sources.c.symbol,
                asset_sources.c.name,
                asset_sources.c.price_usd,
                asset_sources.c.observed_at,
                asset_sources.c.match_method,
                asset_sources.c.match_score,
                identity_audit.c.id.label("audit_id"),
                identity_audit.c.action,
                identity_audit.c.actor,
                identity_audit.c.at,
                identity_audit.c.reason,
            )
            .join(
                identity_pins,
                sa.and_(
                    identity_pins.c.source == asset_sources.c.source,
                    identity_pins.c.source_asset_id == asset_sources.c.source_asset_id,
                ),
                isouter=True,
            )
            .join(identity_audit, identity_audit.c.id == identity_pins.c.audit_id, isouter=True)
            .where(asset_sources.c.asset_id.in_(part))
            .order_by(asset_sources.c.asset_id, asset_sources.c.source)
        ).all()
        for row in rows:
            by_id[row.asset_id].append(row)
    for head in heads:
        rows = by_id[head["asset_id"]]
        head["prices"] = [
            {
                "source": row.source,
                "source_asset_id": row.source_asset_id,
                "price_usd": row.price_usd,
                "observed_at": row.observed_at,
            }
            for row in rows
        ]
        head["members"] = [_member(row) for row in rows]


# How the ETL's match methods read to a person; a pin or a person's decision reads "human".
_LINKED_BY = {"crosswalk": "rule", "id": "score", "score": "score", "pin": "human"}


def _member(row: Any) -> dict[str, Any]:
    decision = None
    if row.audit_id is not None:
        decision = {
            "audit_id": row.audit_id,
            "action": row.action,
            "actor": row.actor,
            "at": row.at,
            "reason": row.reason,
        }
    return {
        "source": row.source,
        "source_asset_id": row.source_asset_id,
        "symbol": row.symbol,
        "name": row.name,
        "linked_by": "human" if decision else _LINKED_BY.get(row.match_method, "new"),
        "match_method": row.match_method,
        "match_score": row.match_score,
        "decision": decision,
    }


def redirect_targets(conn: Connection, asset_ids: Sequence[str]) -> dict[str, str]:
    """`redirect_target` of several ids at once: those merged into another, -> that asset."""
    if not asset_ids:
        return {}
    rows = conn.execute(
        sa.select(identity_redirects.c.asset_id, identity_redirects.c.target_asset_id).where(
            identity_redirects.c.asset_id.in_(list(asset_ids))
        )
    )
    return {row.asset_id: row.target_asset_id for row in rows}


def redirect_target(conn: Connection, asset_id: str) -> str | None:
    """The asset a merged asset's id leads to now (see identity curation), or None."""
    target: str | None = conn.scalar(
        sa.select(identity_redirects.c.target_asset_id).where(
            identity_redirects.c.asset_id == asset_id
        )
    )
    return target


def asset_history(
    conn: Connection,
    asset_id: str,
    *,
    source: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    stmt = sa.select(*HISTORY_COLUMNS).where(price_history.c.asset_id == asset_id)
    if source is not None:
        stmt = stmt.where(price_history.c.source == source)
    if start is not None:
        stmt = stmt.where(price_history.c.observed_at >= start)
    if end is not None:
        stmt = stmt.where(price_history.c.observed_at <= end)
    stmt = stmt.order_by(price_history.c.observed_at.desc(), price_history.c.source).limit(limit)
    # all(): one fetch of every row, not one driver call per row (a page is up to 1,000 rows).
    return [dict(zip(HISTORY_KEYS, row, strict=True)) for row in conn.execute(stmt).all()]
