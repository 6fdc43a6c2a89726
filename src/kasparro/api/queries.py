"""Every read the API makes, as SQLAlchemy Core; alike on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg import AsyncConnection
from sqlalchemy.engine import Connection

from kasparro.db.schema import (
    asset_sources,
    assets,
    etl_checkpoints,
    etl_runs,
    price_history,
    quarantine,
)
from kasparro.models import SOURCES

DATA_COLUMNS = (
    asset_sources.c.asset_id,
    asset_sources.c.source,
    asset_sources.c.source_asset_id,
    asset_sources.c.symbol,
    asset_sources.c.name,
    asset_sources.c.price_usd,
    asset_sources.c.market_cap_usd,
    asset_sources.c.volume_24h_usd,
    asset_sources.c.observed_at,
    asset_sources.c.ingested_at,
    asset_sources.c.run_id,
)
# Plain str keys: column names are `quoted_name`, a str subclass that orjson refuses as a key.
DATA_KEYS = tuple(str(c.key).encode().decode() for c in DATA_COLUMNS)
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


def _contains(column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
    """Case-insensitive substring match; `%` and `_` in the text are literal."""
    return sa.func.lower(column).contains(text.lower(), autoescape=True)


def _count(conn: Connection, table: sa.Table, where: Sequence[sa.ColumnElement[bool]]) -> int:
    return int(conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where)) or 0)


# /data ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataFilters:
    source: str | None = None
    symbol: str | None = None  # upper case
    asset_id: str | None = None
    q: str | None = None

    def fingerprint(self) -> str:
        """Ties a cursor to the filters it was made with."""
        text = orjson.dumps([self.source, self.symbol, self.asset_id, self.q])
        return hashlib.sha256(text).hexdigest()[:16]

    def where(self) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if self.source is not None:
            where.append(asset_sources.c.source == self.source)
        if self.symbol is not None:
            where.append(asset_sources.c.symbol == self.symbol)
        if self.asset_id is not None:
            where.append(asset_sources.c.asset_id == self.asset_id)
        if self.q:
            where.append(_contains(asset_sources.c.name, self.q))
        return where


class TotalsCache:
    """Row counts per filter set, valid while the data has not changed, and for `ttl` at most.

    The ETL commits every batch with its source's checkpoint in one transaction, so
    `data_version` (the checkpoints' latest update) moves whenever asset_sources can have: a
    cached total is exact for ETL writes, and at most `ttl` seconds (and one recount) old for
    any other writer (identity tools, manual edits). The version costs a read of a table of one
    row per source, where a COUNT costs a scan of every matching row.
    """

    def __init__(
        self,
        *,
        ttl: float = 10.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[Any, float, int]] = OrderedDict()
        self._recounting: dict[str, float] = {}  # key -> when a caller was sent to recount
        self._lock = threading.Lock()

    def get(self, key: str, version: Any) -> int | None:
        """The cached total, or None: count, then `put`. When only the ttl has run out (same
        version), one caller is sent to recount and the others keep the last total meanwhile,
        so a busy endpoint never runs a burst of identical COUNTs."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            cached_version, stored_at, total = entry
            if cached_version != version:
                del self._entries[key]
                return None
            now = self._clock()
            if now - stored_at > self.ttl:
                sent = self._recounting.get(key)
                if sent is None or now - sent > self.ttl:  # none sent, or it never came back
                    self._recounting[key] = now
                    return None
            self._entries.move_to_end(key)
            return total

    def put(self, key: str, version: Any, total: int) -> None:
        with self._lock:
            self._recounting.pop(key, None)
            self._entries[key] = (version, self._clock(), total)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


_VERSION_COLUMNS = (
    sa.select(sa.func.max(etl_checkpoints.c.updated_at)).scalar_subquery(),
    sa.select(sa.func.count()).select_from(etl_checkpoints).scalar_subquery(),
)


def data_version(conn: Connection) -> tuple[Any, ...]:
    """Changes whenever the ETL commits a batch (every batch saves its source's checkpoint)."""
    return tuple(conn.execute(sa.select(*_VERSION_COLUMNS)).one())


def data_page(
    conn: Connection,
    filters: DataFilters,
    *,
    limit: int,
    offset: int,
    after: tuple[str, str] | None,
    totals: TotalsCache | None = None,
) -> tuple[list[dict[str, Any]], bool, int]:
    """One page of latest values in (source, source_asset_id) order: rows, more?, total.

    `after` is the keyset position (the primary key of the previous page's last row), so a deep
    page is an index range scan rather than an offset walk. `total` is a COUNT with the same
    filters, reused from `totals` while the data has not changed; the data version rides along
    with the page's rows (two one-row subqueries), so a cached total costs no extra round trip.
    """
    where = filters.where()
    width = len(DATA_COLUMNS)
    columns = (*DATA_COLUMNS, *_VERSION_COLUMNS) if totals is not None else DATA_COLUMNS
    stmt = sa.select(*columns).where(*where)
    if after is not None:
        stmt = stmt.where(
            sa.tuple_(asset_sources.c.source, asset_sources.c.source_asset_id) > sa.tuple_(*after)
        )
    stmt = stmt.order_by(asset_sources.c.source, asset_sources.c.source_asset_id).limit(limit + 1)
    if offset:
        stmt = stmt.offset(offset)
    rows = conn.execute(stmt).all()
    more = len(rows) > limit
    page = [dict(zip(DATA_KEYS, row[:width], strict=True)) for row in rows[:limit]]
    if totals is None:
        return page, more, _count(conn, asset_sources, where)
    key = filters.fingerprint()
    version = tuple(rows[0][width:]) if rows else data_version(conn)
    total = totals.get(key, version)
    if total is None:
        total = _count(conn, asset_sources, where)
        totals.put(key, version, total)
    return page, more, total


@dataclass(frozen=True, slots=True)
class JsonPage:
    """A /data page whose rows PostgreSQL wrote as JSON (see `data_page_json`)."""

    rows_json: str  # comma-separated JSON objects, without the brackets
    count: int
    last: tuple[str, str] | None  # keyset position of the last row when there is a next page
    total: int


def _json_value(column: sa.Column[Any]) -> str:
    """SQL that writes one column's value as JSON, equal to what the Python path writes: strings
    and times in the same text, floats as the same number (always with a "." or an exponent, so
    they decode as floats; the exponent's form may differ, "1e-09" for orjson's "1e-9")."""
    name = f"page.{column.name}"
    if isinstance(column.type, sa.Double):
        # float8 text is the shortest exact form; a whole number gets ".0", as in Python.
        return (
            f"CASE WHEN {name} IS NULL THEN 'null' WHEN {name} = trunc({name}) "
            f"AND abs({name}) < 1e15 THEN {name}::text || '.0' ELSE {name}::text END"
        )
    if isinstance(column.type, sa.TypeDecorator):  # UTCDateTime: microseconds only if any, Z
        utc = f"to_char({name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
        text = f"replace({utc}, '.000000', '')"
        return f"CASE WHEN {name} IS NULL THEN 'null' ELSE '\"' || {text} || 'Z\"' END"
    return f"coalesce(to_json({name})::text, 'null')"


# One /data row as a JSON object, in DATA_KEYS order.
_ROW_JSON = (
    " || ".join(
        f"'{',' if i else '{'}\"{key}\":' || {_json_value(column)}"
        for i, (key, column) in enumerate(zip(DATA_KEYS, DATA_COLUMNS, strict=True))
    )
    + " || '}'"
)


def _data_where(source: bool, symbol: bool, asset_id: bool, q: bool) -> list[str]:
    return [
        condition
        for present, condition in (
            (source, "source = %(source)s"),
            (symbol, "symbol = %(symbol)s"),
            (asset_id, "asset_id = %(asset_id)s"),
            (q, "strpos(lower(name), %(q)s) > 0"),
        )
        if present
    ]


@lru_cache(maxsize=64)
def _data_json_sql(
    source: bool, symbol: bool, asset_id: bool, q: bool, after: bool, offset: bool
) -> str:
    """The page query for one combination of filters, written once (psycopg parameters)."""
    where = _data_where(source, symbol, asset_id, q)
    if after:
        where.append("(source, source_asset_id) > (%(after_source)s, %(after_id)s)")
    # Only fixed fragments are joined here; every value is a psycopg parameter. The JSON is
    # written in the outer query, for the page's rows only (an OFFSET skips rows unwritten).
    columns = ", ".join(str(c.name) for c in DATA_COLUMNS)
    return (
        f"SELECT {_ROW_JSON}, page.source, page.source_asset_id, "  # noqa: S608
        # The data version, as text: it is only compared, never read.
        "(SELECT max(updated_at)::text FROM etl_checkpoints), "
        "(SELECT count(*) FROM etl_checkpoints) "
        f"FROM (SELECT {columns} FROM asset_sources"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY source, source_asset_id LIMIT %(limit)s"
        + (" OFFSET %(offset)s" if offset else "")
        + ") AS page ORDER BY page.source, page.source_asset_id"
    )


@lru_cache(maxsize=16)
def _data_count_sql(source: bool, symbol: bool, asset_id: bool, q: bool) -> str:
    where = _data_where(source, symbol, asset_id, q)
    return "SELECT count(*) FROM asset_sources" + (  # noqa: S608 - fixed fragments only
        f" WHERE {' AND '.join(where)}" if where else ""
    )


_DATA_VERSION_SQL = "SELECT max(updated_at)::text, count(*) FROM etl_checkpoints"


async def data_page_json(
    conn: AsyncConnection[Any],
    filters: DataFilters,
    *,
    limit: int,
    offset: int,
    after: tuple[str, str] | None,
    totals: TotalsCache,
) -> JsonPage:
    """`data_page` on PostgreSQL, on psycopg's async driver, the rows serialized by the database:
    one query and a join of strings here, where decoding, converting and re-encoding every row
    (and a worker thread per request) is what bounds a busy process. The JSON has the same
    values as the Python path's."""
    shape = (
        filters.source is not None,
        filters.symbol is not None,
        filters.asset_id is not None,
        bool(filters.q),
    )
    params = {
        "source": filters.source,
        "symbol": filters.symbol,
        "asset_id": filters.asset_id,
        "q": (filters.q or "").lower(),
        "after_source": after[0] if after else None,
        "after_id": after[1] if after else None,
        "limit": limit + 1,
        "offset": offset,
    }
    cursor = await conn.execute(_data_json_sql(*shape, after is not None, bool(offset)), params)
    rows = await cursor.fetchall()
    if rows:
        version = tuple(rows[0][3:])
    else:
        version = tuple(await (await conn.execute(_DATA_VERSION_SQL)).fetchone() or ())
    key = filters.fingerprint()
    total = totals.get(key, version)
    if total is None:
        counted = await (await conn.execute(_data_count_sql(*shape), params)).fetchone()
        total = int(counted[0]) if counted else 0
        totals.put(key, version, total)
    page = rows[:limit]
    return JsonPage(
        rows_json=",".join(row[0] for row in page),
        count=len(page),
        last=(page[-1][1], page[-1][2]) if len(rows) > limit else None,
        total=total,
    )


# /assets --------------------------------------------------------------------------------------


def _asset_where(symbol: str | None, q: str | None) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if symbol is not None:
        where.append(assets.c.symbol == symbol)
    if q:
        where.append(_contains(assets.c.name, q))
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
    return heads, _count(conn, assets, where)


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
    by_id: dict[str, list[dict[str, Any]]] = {h["asset_id"]: [] for h in heads}
    for part in _chunks(list(by_id), 500):
        rows = conn.execute(
            sa.select(
                asset_sources.c.asset_id,
                asset_sources.c.source,
                asset_sources.c.source_asset_id,
                asset_sources.c.price_usd,
                asset_sources.c.observed_at,
            )
            .where(asset_sources.c.asset_id.in_(part))
            .order_by(asset_sources.c.asset_id, asset_sources.c.source)
        ).all()
        for row in rows:
            by_id[row.asset_id].append(
                {
                    "source": row.source,
                    "source_asset_id": row.source_asset_id,
                    "price_usd": row.price_usd,
                    "observed_at": row.observed_at,
                }
            )
    for head in heads:
        head["prices"] = by_id[head["asset_id"]]


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
    return [dict(zip(HISTORY_KEYS, row, strict=True)) for row in conn.execute(stmt)]


# A degraded run loaded what it could trust and quarantined the rest: it succeeded.
SUCCEEDED = ("success", "degraded")


# runs: /health, /stats, /runs -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRuns:
    runs_total: int = 0
    records_processed_total: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    running: bool = False
    latest: dict[str, Any] | None = None  # the latest run, finished or not
    latest_finished: dict[str, Any] | None = None


def source_runs(conn: Connection, sources: Iterable[str]) -> dict[str, SourceRuns]:
    """Per source: run totals, last success and failure, latest run and latest finished run."""
    names = list(dict.fromkeys(sources))
    finished_when = etl_runs.c.finished_at
    aggregates = {
        row.source: row
        for row in conn.execute(
            sa.select(
                etl_runs.c.source,
                sa.func.count().label("runs_total"),
                sa.func.coalesce(sa.func.sum(etl_runs.c.records_processed), 0).label("processed"),
                sa.func.max(sa.case((etl_runs.c.status.in_(SUCCEEDED), finished_when))).label(
                    "last_success_at"
                ),
                sa.func.max(sa.case((etl_runs.c.status == "failed", finished_when))).label(
                    "last_failure_at"
                ),
                sa.func.sum(sa.case((etl_runs.c.status == "running", 1), else_=0)).label("running"),
            )
            .where(etl_runs.c.source.in_(names))
            .group_by(etl_runs.c.source)
        )
    }
    result: dict[str, SourceRuns] = {}
    for name in names:
        agg = aggregates.get(name)
        if agg is None:
            result[name] = SourceRuns()
            continue
        latest = _latest_run(conn, name, finished_only=False)
        finished = (
            latest
            if latest is not None and latest["finished_at"] is not None
            else _latest_run(conn, name, finished_only=True)
        )
        result[name] = SourceRuns(
            runs_total=int(agg.runs_total),
            records_processed_total=int(agg.processed),
            last_success_at=agg.last_success_at,
            last_failure_at=agg.last_failure_at,
            running=bool(agg.running),
            latest=latest,
            latest_finished=finished,
        )
    return result


def _latest_run(conn: Connection, source: str, *, finished_only: bool) -> dict[str, Any] | None:
    stmt = sa.select(etl_runs).where(etl_runs.c.source == source)
    if finished_only:
        stmt = stmt.where(etl_runs.c.finished_at.is_not(None))
    row = conn.execute(
        stmt.order_by(etl_runs.c.started_at.desc(), etl_runs.c.run_id.desc()).limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def counts_by_source(conn: Connection, table: sa.Table) -> dict[str, int]:
    rows = conn.execute(sa.select(table.c.source, sa.func.count()).group_by(table.c.source)).all()
    return {str(source): int(n) for source, n in rows}


def assets_total(conn: Connection) -> int:
    return _count(conn, assets, [])


def quarantine_by_source(conn: Connection) -> dict[str, int]:
    return counts_by_source(conn, quarantine)


def asset_sources_by_source(conn: Connection) -> dict[str, int]:
    return counts_by_source(conn, asset_sources)


def sources_with_runs(conn: Connection) -> list[str]:
    present = set(conn.scalars(sa.select(etl_runs.c.source).distinct()))
    return [name for name in SOURCES if name in present]


def runs_page(
    conn: Connection, *, source: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where: list[sa.ColumnElement[bool]] = []
    if source is not None:
        where.append(etl_runs.c.source == source)
    if status is not None:
        where.append(etl_runs.c.status == status)
    rows = conn.execute(
        sa.select(etl_runs)
        .where(*where)
        .order_by(etl_runs.c.started_at.desc(), etl_runs.c.run_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [dict(row._mapping) for row in rows], _count(conn, etl_runs, where)


def run(conn: Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(etl_runs).where(etl_runs.c.run_id == run_id)).first()
    return dict(row._mapping) if row is not None else None


@dataclass(frozen=True, slots=True)
class Observation:
    asset_id: str
    price_usd: float
    observed_at: datetime


def run_observations(conn: Connection, run: dict[str, Any]) -> dict[tuple[str, str], Observation]:
    """Per source asset, the newest price_history row this run wrote (by observed_at)."""
    latest: dict[tuple[str, str], Observation] = {}
    rows = conn.execute(
        sa.select(
            price_history.c.source,
            price_history.c.source_asset_id,
            price_history.c.asset_id,
            price_history.c.price_usd,
            price_history.c.observed_at,
        ).where(
            # The source bound narrows the scan to the primary key's leading column.
            price_history.c.source == run["source"],
            price_history.c.run_id == run["run_id"],
        )
    )
    for source, source_asset_id, asset_id, price, observed_at in rows:
        key = (source, source_asset_id)
        seen = latest.get(key)
        if seen is None or observed_at > seen.observed_at:
            latest[key] = Observation(asset_id, price, observed_at)
    return latest


# drift and anomalies ---------------------------------------------------------------------------


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
    return [dict(row._mapping) for row in rows], _count(conn, table, where)


def run_events(conn: Connection, table: sa.Table, run_id: str) -> list[dict[str, Any]]:
    """Every drift event or anomaly of one run, in the order they were recorded."""
    rows = conn.execute(sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id))
    return [dict(row._mapping) for row in rows]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
