"""Quarantined records for /quarantine and `kasparro quarantine`: listed, filtered, one by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import count_rows
from kasparro.db.schema import quarantine


@dataclass(frozen=True, slots=True)
class QuarantineFilter:
    """Every given field narrows the list; `since` and `until` bound `created_at` (inclusive)."""

    source: str | None = None
    run_id: str | None = None
    reason_code: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if self.source is not None:
            where.append(quarantine.c.source == self.source)
        if self.run_id is not None:
            where.append(quarantine.c.run_id == self.run_id)
        if self.reason_code is not None:
            where.append(quarantine.c.reason_code == self.reason_code)
        if self.since is not None:
            where.append(quarantine.c.created_at >= self.since)
        if self.until is not None:
            where.append(quarantine.c.created_at <= self.until)
        return where


def quarantine_page(
    conn: Connection, filters: QuarantineFilter, *, limit: int, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Quarantined records newest first (then by id, newest first), and how many match."""
    where = filters.where()
    rows = conn.execute(
        sa.select(quarantine)
        .where(*where)
        .order_by(quarantine.c.created_at.desc(), quarantine.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [dict(row._mapping) for row in rows], count_rows(conn, quarantine, where)


def quarantined(conn: Connection, record_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(quarantine).where(quarantine.c.id == record_id)).first()
    return dict(row._mapping) if row is not None else None
