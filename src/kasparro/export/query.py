"""The rows of an export, in time order, read in batches through a server-side cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.db import partitions
from kasparro.db.schema import price_history

# Column order of every export format.
COLUMNS = (
    price_history.c.observed_at,
    price_history.c.asset_id,
    price_history.c.source,
    price_history.c.source_asset_id,
    price_history.c.price_usd,
    price_history.c.market_cap_usd,
    price_history.c.volume_24h_usd,
    price_history.c.ingested_at,
    price_history.c.run_id,
)
BATCH_ROWS = 10_000
# PostgreSQL reads the range a day at a time: each day's rows are sorted by the server in a
# few MB (a month of one source is millions of rows, a sort spilled to disk before the first
# row could leave), and the day's pages are found through the partition and its BRIN index.
WINDOW = timedelta(days=1)

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class HistoryExport:
    """What to export: observations in [start, end), of one source or all, of some assets or
    all."""

    start: datetime
    end: datetime
    source: str | None = None
    asset_ids: tuple[str, ...] = ()

    def where(self, lo: datetime, hi: datetime) -> list[sa.ColumnElement[bool]]:
        where = [price_history.c.observed_at >= lo, price_history.c.observed_at < hi]
        if self.source is not None:
            where.append(price_history.c.source == self.source)
        if self.asset_ids:
            where.append(price_history.c.asset_id.in_(self.asset_ids))
        return where


def history_batches(
    engine: Engine, export: HistoryExport, *, batch_rows: int = BATCH_ROWS
) -> Iterator[list[Row]]:
    """Lists of at most `batch_rows` rows (COLUMNS order), ordered by observed_at, source,
    source_asset_id. Only one batch is held at a time: the cursor is server-side
    (`stream_results`) on PostgreSQL, and SQLite's cursor steps through its result anyway."""
    if export.end <= export.start:
        return
    order = (price_history.c.observed_at, price_history.c.source, price_history.c.source_asset_id)
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        ranges = (
            windows(conn, export.start, export.end) if postgres else [(export.start, export.end)]
        )
        streaming = conn.execution_options(stream_results=True, yield_per=batch_rows)
        for lo, hi in ranges:
            stmt = sa.select(*COLUMNS).where(*export.where(lo, hi)).order_by(*order)
            for part in streaming.execute(stmt).partitions():
                yield [tuple(row) for row in part]


def windows(
    conn: Connection, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Day-long ranges covering [start, end), cut to the span the partitions can hold rows in
    (a request for ten thousand years reads two years, a day at a time)."""
    lo, hi = _span(conn, start, end)
    while lo < hi:
        step = min(lo + WINDOW, hi)
        yield lo, step
        lo = step


def _span(conn: Connection, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    months = partitions.months(conn)
    if not months:
        return start, end
    oldest = conn.scalar(
        sa.text(f"SELECT min(observed_at) FROM {partitions.BEFORE}")  # noqa: S608 - a constant
    )
    first = months[0].start if oldest is None else min(oldest, months[0].start)
    return max(start, first), min(end, months[-1].end)
