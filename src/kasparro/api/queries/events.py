"""Drift events and anomalies, listed or per run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import count_rows


def events_page(
    conn: Connection,
    table: sa.Table,
    *,
    equal: dict[str, str | None],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Rows of drift_events or anomalies, newest first, where each given column equals its value."""
    where = [table.c[name] == value for name, value in equal.items() if value is not None]
    rows = conn.execute(
        sa.select(table)
        .where(*where)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [dict(row._mapping) for row in rows], count_rows(conn, table, where)


def run_events(conn: Connection, table: sa.Table, run_id: str) -> list[dict[str, Any]]:
    """Every drift event or anomaly of one run, in the order they were recorded."""
    rows = conn.execute(sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id))
    return [dict(row._mapping) for row in rows]
