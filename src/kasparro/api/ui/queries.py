"""The few reads the console needs beyond the JSON API's query functions: a source's recent runs
for its trend, runs filtered by trigger and time, and an asset's members."""

from __future__ import annotations

import string
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import contains, count_rows
from kasparro.db.schema import asset_sources, assets, etl_runs, quarantine

TREND_RUNS = 20
# More assets than any ticker names (a ticker is shared by a few coins, not thousands).
TICKER_ROWS = 5000
# What anyone may read of a run: `error_detail` is for admins (as in /runs).
PUBLIC_RUN_COLUMNS = [c for c in etl_runs.c if c.name != "error_detail"]


def recent_runs(conn: Connection, source: str, limit: int = TREND_RUNS) -> list[dict[str, Any]]:
    """The source's latest finished runs, oldest first (the index on source, started_at)."""
    rows = conn.execute(
        sa.select(
            etl_runs.c.run_id,
            etl_runs.c.status,
            etl_runs.c.records_processed,
            etl_runs.c.duration_ms,
            etl_runs.c.started_at,
        )
        .where(etl_runs.c.source == source, etl_runs.c.finished_at.is_not(None))
        .order_by(etl_runs.c.started_at.desc(), etl_runs.c.run_id.desc())
        .limit(limit)
    ).all()
    return [row._asdict() for row in reversed(rows)]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Every given field narrows the list; `since` and `until` bound `started_at`."""

    source: str | None = None
    status: str | None = None
    trigger: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        for column, value in (
            (etl_runs.c.source, self.source),
            (etl_runs.c.status, self.status),
            (etl_runs.c.trigger, self.trigger),
        ):
            if value is not None:
                where.append(column == value)
        if self.since is not None:
            where.append(etl_runs.c.started_at >= self.since)
        if self.until is not None:
            where.append(etl_runs.c.started_at <= self.until)
        return where


def runs_page(
    conn: Connection, filters: RunFilter, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Runs newest first, and how many match."""
    where = filters.where()
    rows = conn.execute(
        sa.select(*PUBLIC_RUN_COLUMNS)
        .where(*where)
        .order_by(etl_runs.c.started_at.desc(), etl_runs.c.run_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [dict(row._mapping) for row in rows], count_rows(conn, etl_runs, where)


def run_triggers(conn: Connection) -> list[str]:
    return sorted(str(t) for t in conn.scalars(sa.select(etl_runs.c.trigger).distinct()))


def asset_members(conn: Connection, asset_id: str) -> list[dict[str, Any]]:
    """The source assets linked to a canonical asset, with how each was linked."""
    rows = conn.execute(
        sa.select(
            asset_sources.c.source,
            asset_sources.c.source_asset_id,
            asset_sources.c.symbol,
            asset_sources.c.name,
            asset_sources.c.price_usd,
            asset_sources.c.observed_at,
            asset_sources.c.match_method,
            asset_sources.c.match_score,
            asset_sources.c.run_id,
        )
        .where(asset_sources.c.asset_id == asset_id)
        .order_by(asset_sources.c.source)
    ).all()
    return [row._asdict() for row in rows]


def find_assets(
    conn: Connection,
    *,
    symbol: str | None = None,
    name_start: str | None = None,
    name_inside: str | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """Assets whose ticker is `symbol` (exactly, by its index), whose name starts with
    `name_start` (case-insensitively, by the index on lower(name); by name) or contains
    `name_inside` (reads every name), else the first assets; each with its per-source prices.
    Uncounted: a count would read every asset again, and a search box needs only a page."""
    stmt = sa.select(assets.c.asset_id, assets.c.symbol, assets.c.name)
    if symbol is not None:
        # A ticker's rows are few and come from its index; sorted here, because ORDER BY
        # asset_id LIMIT tempts the planner to walk every asset id looking for them.
        found = conn.execute(stmt.where(assets.c.symbol == symbol).limit(TICKER_ROWS)).all()
        rows = sorted(found, key=lambda r: r.asset_id)
    elif name_start is not None:
        rows = list(conn.execute(_name_start_query(conn, stmt, name_start).limit(limit)))
    elif name_inside is not None:
        where = contains(assets.c.name, name_inside)
        rows = list(conn.execute(stmt.where(where).order_by(assets.c.asset_id).limit(limit)))
    else:
        rows = list(conn.execute(stmt.order_by(assets.c.asset_id).limit(limit)))
    heads = [row._asdict() for row in rows[:limit]]
    prices: dict[str, list[float]] = {head["asset_id"]: [] for head in heads}
    if prices:
        for asset_id, price in conn.execute(
            sa.select(asset_sources.c.asset_id, asset_sources.c.price_usd).where(
                asset_sources.c.asset_id.in_(list(prices))
            )
        ):
            prices[asset_id].append(price)
    for head in heads:
        head["prices"] = prices[head["asset_id"]]
    return heads


SQLITE_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _name_start_query(conn: Connection, stmt: sa.Select[Any], text: str) -> sa.Select[Any]:
    """Names starting with `text`, in the order of the index on lower(name) (migration 0008):
    the names from `lower(text)` up to the next string that does not start with it, by code
    point, one range of the index whose first rows end the scan."""
    key: sa.ColumnElement[str]
    if conn.dialect.name == "postgresql":
        lowered, key = text.lower(), sa.collate(sa.func.lower(assets.c.name), "C")
    else:
        # SQLite's lower() changes ASCII letters only; its text order is by code point.
        lowered, key = text.translate(SQLITE_LOWER), sa.func.lower(assets.c.name)
    stmt = stmt.where(key >= lowered)
    following = _next_prefix(lowered)
    if following is not None:
        stmt = stmt.where(key < following)
    else:  # only U+10FFFF at its end: no bound above, so test the start itself
        stmt = stmt.where(key.startswith(lowered, autoescape=True))
    return stmt.order_by(key, assets.c.asset_id)


def _next_prefix(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix` (by code point)."""
    kept = prefix.rstrip(chr(sys.maxunicode))
    if not kept:
        return None
    following = ord(kept[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are no text; the next code point after them
        following = 0xE000
    return kept[:-1] + chr(following)


def held_records(
    conn: Connection,
    *,
    source: str | None = None,
    run_id: str | None = None,
    reason_code: str | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """Quarantined records, newest first by id (the order they were refused in), uncounted.

    /quarantine sorts by `created_at`, which no index orders: for a page of 50 that reads and
    sorts every record; the id's own index gives the same order without either."""
    where = [
        column == value
        for column, value in (
            (quarantine.c.source, source),
            (quarantine.c.run_id, run_id),
            (quarantine.c.reason_code, reason_code),
        )
        if value is not None
    ]
    rows = conn.execute(
        sa.select(quarantine).where(*where).order_by(quarantine.c.id.desc()).limit(limit)
    )
    return [dict(row._mapping) for row in rows]
