"""Reference prices: the latest of some assets, and one asset's history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from kasparro.db.schema import reference_prices
from kasparro.load.sql import id_chunks, in_list


def latest(conn: Connection, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest reference row of each of `asset_ids` that has one."""
    wanted = list(dict.fromkeys(asset_ids))
    if conn.dialect.name == "postgresql":
        return _latest_by_probe(conn, wanted)
    found: dict[str, dict[str, Any]] = {}
    for part in id_chunks(conn, wanted):
        newest = (
            sa.select(
                reference_prices.c.asset_id, sa.func.max(reference_prices.c.as_of).label("as_of")
            )
            .where(in_list(conn, reference_prices.c.asset_id, part))
            .group_by(reference_prices.c.asset_id)
            .subquery()
        )
        rows = conn.execute(
            sa.select(reference_prices).join(
                newest,
                sa.and_(
                    reference_prices.c.asset_id == newest.c.asset_id,
                    reference_prices.c.as_of == newest.c.as_of,
                ),
            )
        )
        found.update((row.asset_id, row._asdict()) for row in rows)
    return found


def history(
    conn: Connection,
    asset_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    before: datetime | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Rows newest first, as_of within [start, end] and before `before` (the keyset cursor);
    up to `limit` + 1, so the caller knows whether there is more."""
    stmt = sa.select(reference_prices).where(reference_prices.c.asset_id == asset_id)
    if start is not None:
        stmt = stmt.where(reference_prices.c.as_of >= start)
    if end is not None:
        stmt = stmt.where(reference_prices.c.as_of <= end)
    if before is not None:
        stmt = stmt.where(reference_prices.c.as_of < before)
    stmt = stmt.order_by(reference_prices.c.as_of.desc()).limit(limit + 1)
    return [row._asdict() for row in conn.execute(stmt)]


def _latest_by_probe(conn: Connection, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One backward probe of the primary key (asset_id, as_of) per id (LATERAL ... LIMIT 1):
    grouping by asset_id instead read every reference row of the table (500,000 rows, 56 ms,
    under /assets' first page) where a few hundred index pages answer."""
    if not asset_ids:
        return {}
    ids = (
        sa.func.unnest(sa.literal(list(asset_ids), type_=postgresql.ARRAY(sa.String)))
        .table_valued("asset_id")
        .render_derived(name="ids")
    )
    newest = (
        sa.select(reference_prices)
        .where(reference_prices.c.asset_id == ids.c.asset_id)
        .order_by(reference_prices.c.as_of.desc())
        .limit(1)
        .lateral("newest")
    )
    rows = conn.execute(sa.select(newest).select_from(ids).join(newest, sa.true()))
    return {row.asset_id: row._asdict() for row in rows}
