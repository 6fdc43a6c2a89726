"""Dialect-aware bulk statements: the same calls on both databases, each done its fastest way.

On PostgreSQL many rows go in by COPY into a temporary staging table and one INSERT ... SELECT
(with the ON CONFLICT clause the caller asks for), and an IN-list is one array parameter. On
SQLite they are executemany and chunked IN-lists. Both run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import Any, TypeVar

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

T = TypeVar("T")

# Well under SQLite's 32,766 bound parameters per statement (PostgreSQL gets one array instead).
IN_LIST_CHUNK = 900
# Below this many rows a plain multi-row statement is as quick as COPY and its staging table.
COPY_THRESHOLD = 64

# Receives the dialect's INSERT (with `.excluded`) and returns it with its ON CONFLICT clause.
OnConflict = Callable[[Any], Any]


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database: {conn.dialect.name}")


def insert_ignore(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING for many rows; returns how many were new."""
    return insert_rows(conn, table, rows, on_conflict=lambda stmt: stmt.on_conflict_do_nothing())


def insert_new(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]], key: str) -> int:
    """INSERT the rows whose `key` (a single-column primary key) is not in the table yet; returns
    how many were new. Same result as `insert_ignore`, and as safe only where nobody inserts a
    key between the probe and the insert: inside a serialized `write_transaction`, or for keys
    only one writer makes.

    On PostgreSQL an index probe for the keys and a straight COPY of the new rows cost a
    fraction of staging every row for `INSERT ... ON CONFLICT`; on SQLite that is the quick way.
    """
    if conn.dialect.name != "postgresql" or len(rows) < COPY_THRESHOLD:
        return insert_ignore(conn, table, rows)
    column = table.c[key]
    existing: set[Any] = set()
    for part in id_chunks(conn, sorted({row[key] for row in rows})):
        existing.update(conn.scalars(sa.select(column).where(in_list(conn, column, part))))
    new = {row[key]: row for row in rows if row[key] not in existing}
    return insert_rows(conn, table, list(new.values()))


def insert_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    on_conflict: OnConflict | None = None,
) -> int:
    """INSERT many rows (all with the same keys); returns how many were inserted or updated.

    Without `on_conflict` a conflicting row is an error, as for a plain INSERT.
    """
    if not rows:
        return 0
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        return _copy_insert(conn, table, rows, on_conflict)
    stmt = insert_for(conn, table)
    if on_conflict is not None:
        stmt = on_conflict(stmt)
    pk = list(table.primary_key.columns)[:1]
    return len(conn.execute(stmt.returning(*pk), list(rows)).all())


def _copy_insert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    on_conflict: OnConflict | None,
) -> int:
    columns = list(rows[0])
    if on_conflict is None:  # nothing to resolve: straight into the table
        _copy(conn, table, table.name, columns, rows)
        return len(rows)
    stage = f"stage_{table.name}"
    # A temporary table lives in this session only; ON COMMIT DELETE ROWS empties it at commit,
    # and one made in a transaction that rolls back disappears with it.
    conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage}" '
        f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
    )
    _copy(conn, table, stage, columns, rows)
    staged = sa.table(stage, *(sa.column(name) for name in columns))
    stmt = postgresql.insert(table).from_select(columns, sa.select(*staged.c))
    if on_conflict is not None:
        stmt = on_conflict(stmt)
    # SQLAlchemy reports an INSERT ... SELECT's rowcount only when asked to keep it.
    written = conn.execute(stmt.execution_options(preserve_rowcount=True)).rowcount
    conn.exec_driver_sql(f'TRUNCATE "{stage}"')
    return int(written)


def _copy(
    conn: Connection,
    table: sa.Table,
    target: str,
    columns: list[str],
    rows: Sequence[dict[str, Any]],
) -> None:
    # Binary COPY: psycopg's C dumpers encode floats and timestamps far faster than text, but
    # each value must have its column's exact type, so the types are named up front. JSON goes
    # through the engine's serializer (`json_text`), which psycopg was given at connect.
    types = [_pg_type(conn, table.c[name]) for name in columns]
    names = ", ".join(f'"{name}"' for name in columns)
    driver = conn.connection.dbapi_connection
    assert driver is not None
    statement = f'COPY "{target}" ({names}) FROM STDIN (FORMAT BINARY)'
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    cursor: Any = driver.cursor()
    try:
        with cursor, cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(values(row))
    except psycopg.IntegrityError as exc:  # the same error as the statement path raises
        raise sa.exc.IntegrityError(statement, None, exc) from exc


def _pg_type(conn: Connection, column: sa.Column[Any]) -> str:
    """The column's PostgreSQL type name as psycopg knows it: `VARCHAR(160)` is `varchar`."""
    return str(column.type.compile(dialect=conn.dialect)).split("(", 1)[0].lower()


def in_list(conn: Connection, column: sa.ColumnElement[str], values: Sequence[str]) -> Any:
    """`column IN values` for text columns.

    On PostgreSQL the values travel as one JSON array parameter, however many there are, and are
    unnested in a subquery. Two reasons: the planner estimates a set-returning function at 100
    rows, so it probes the column's index instead of scanning the table (an `= ANY(array)` of
    2,000 ids seq-scans a freshly loaded table whose statistics are not in yet); and one
    orjson string is far cheaper to send than a 2,000-element array parameter.
    """
    if conn.dialect.name == "postgresql":
        array = sa.cast(sa.bindparam(None, orjson.dumps(list(values)).decode()), postgresql.JSONB)
        return column.in_(sa.select(sa.func.jsonb_array_elements_text(array)))
    return column.in_(values)


def id_chunks(conn: Connection, items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Chunks for `in_list`: SQLite's parameter limit binds; an array parameter has none."""
    return chunks(items, 50_000 if conn.dialect.name == "postgresql" else IN_LIST_CHUNK)


def chunks(items: Sequence[T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
