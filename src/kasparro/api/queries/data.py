"""/data: the latest value per source asset, paged by cursor; JSON written by PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg import AsyncConnection
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import contains, count_rows
from kasparro.db.schema import asset_sources, etl_checkpoints

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
            where.append(contains(asset_sources.c.name, self.q))
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
        return page, more, count_rows(conn, asset_sources, where)
    key = filters.fingerprint()
    version = tuple(rows[0][width:]) if rows else data_version(conn)
    total = totals.get(key, version)
    if total is None:
        total = count_rows(conn, asset_sources, where)
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
