"""Reference prices: the latest of some assets, and one asset's history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.db.schema import reference_prices
from kasparro.load.sql import id_chunks, in_list


def latest(conn: Connection, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest reference row of each of `asset_ids` that has one."""
    found: dict[str, dict[str, Any]] = {}
    for part in id_chunks(conn, list(dict.fromkeys(asset_ids))):
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
