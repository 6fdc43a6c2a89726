"""What the method reads from the database: each source's latest observation of each asset
(`asset_sources`), and, for the few assets where a source may be frozen, recent history."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.db.schema import asset_sources, price_history
from kasparro.load.sql import id_chunks, in_list

Recent = dict[tuple[str, str, str], list[tuple[datetime, float]]]


class Latest(NamedTuple):
    """A source's latest observation of an asset."""

    source: str
    source_asset_id: str
    price_usd: float
    volume_24h_usd: float | None
    observed_at: datetime


_LATEST = (
    asset_sources.c.asset_id,
    asset_sources.c.source,
    asset_sources.c.source_asset_id,
    asset_sources.c.price_usd,
    asset_sources.c.volume_24h_usd,
    asset_sources.c.observed_at,
)


def latest_quotes(conn: Connection, asset_ids: Sequence[str] | None) -> dict[str, list[Latest]]:
    """Per asset (of `asset_ids`, or every one: one scan), its sources' latest observations."""
    quotes: dict[str, list[Latest]] = defaultdict(list)
    for where in _asset_filters(conn, asset_ids):
        for asset_id, *values in conn.execute(sa.select(*_LATEST).where(*where)):
            quotes[asset_id].append(Latest(*values))
    return quotes


def repeated_latest(
    conn: Connection, asset_ids: Sequence[str] | None, lookback: timedelta
) -> set[str]:
    """The assets with a source whose history holds its latest price earlier, within
    `lookback` before that latest observation: the only ones where a source may be frozen."""
    earlier = price_history.alias("earlier")
    since = _seconds_before(conn, asset_sources.c.observed_at, lookback.total_seconds())
    repeated = sa.exists().where(
        earlier.c.source == asset_sources.c.source,
        earlier.c.source_asset_id == asset_sources.c.source_asset_id,
        earlier.c.observed_at < asset_sources.c.observed_at,
        earlier.c.observed_at >= since,
        earlier.c.price_usd == asset_sources.c.price_usd,
    )
    found: set[str] = set()
    for where in _asset_filters(conn, asset_ids):
        stmt = sa.select(asset_sources.c.asset_id).distinct().where(*where, repeated)
        found.update(conn.scalars(stmt))
    return found


def recent_prices(conn: Connection, as_of: dict[str, datetime], lookback: timedelta) -> Recent:
    """Per (asset, source, source asset): its prices within `lookback` before its asset's
    as-of time. Assets whose as-of times are close are read together, with one time range."""
    found: Recent = defaultdict(list)
    for group, since, until in time_groups(as_of, lookback):
        for part in id_chunks(conn, group):
            rows = conn.execute(
                sa.select(
                    price_history.c.asset_id,
                    price_history.c.source,
                    price_history.c.source_asset_id,
                    price_history.c.observed_at,
                    price_history.c.price_usd,
                ).where(
                    in_list(conn, price_history.c.asset_id, part),
                    price_history.c.observed_at >= since,
                    price_history.c.observed_at <= until,
                )
            )
            for asset_id, source, source_asset_id, observed_at, price in rows:
                if observed_at >= as_of[asset_id] - lookback:
                    found[(asset_id, source, source_asset_id)].append((observed_at, price))
    return found


def time_groups(
    as_of: dict[str, datetime], lookback: timedelta
) -> Iterable[tuple[list[str], datetime, datetime]]:
    """Assets grouped so that each group's time range is at most twice the lookback: one
    stale asset must not make every other asset's history be read back to its time."""
    ordered = sorted(as_of.items(), key=lambda item: item[1])
    group: list[str] = []
    first: datetime | None = None
    last: datetime | None = None
    for asset_id, when in ordered:
        if first is not None and last is not None and when - first > lookback:
            yield group, first - lookback, last
            group, first = [], None
        group.append(asset_id)
        first = first or when
        last = when
    if group and first is not None and last is not None:
        yield group, first - lookback, last


def _asset_filters(
    conn: Connection, asset_ids: Sequence[str] | None
) -> Iterable[list[sa.ColumnElement[bool]]]:
    """WHERE clauses covering `asset_ids` in chunks, or one covering every asset."""
    if asset_ids is None:
        yield []
        return
    for part in id_chunks(conn, sorted(set(asset_ids))):
        yield [in_list(conn, asset_sources.c.asset_id, part)]


def _seconds_before(conn: Connection, column: Any, seconds: float) -> Any:
    """`column` minus `seconds`, in SQL. On SQLite (UTC text, as UTCDateTime stores it) to the
    second, rounded down: a bound up to a second early, which only widens the test."""
    if conn.dialect.name == "postgresql":
        return column - sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    return sa.func.datetime(column, f"-{math.ceil(seconds)} seconds")
