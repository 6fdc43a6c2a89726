"""Dialect-aware bulk statements: the same calls on both databases, each done its fastest way.

On PostgreSQL many rows go in by COPY into a temporary staging table and one INSERT ... SELECT
(with the ON CONFLICT clause the caller asks for), and an IN-list is one array parameter. On
SQLite they are executemany and chunked IN-lists. Both run in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    json_columns = {name for name in columns if isinstance(table.c[name].type, sa.JSON)}
    names = ", ".join(f'"{name}"' for name in columns)
    driver = conn.connection.dbapi_connection
    assert driver is not None
    statement = f'COPY "{target}" ({names}) FROM STDIN'
    cursor: Any = driver.cursor()
    try:
        with cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        orjson.dumps(row[name]).decode()
                        if name in json_columns and row[name] is not None
                        else row[name]
                        for name in columns
                    ]
                )
    except psycopg.IntegrityError as exc:  # the same error as the statement path raises
        raise sa.exc.IntegrityError(statement, None, exc) from exc


def in_list(conn: Connection, column: sa.ColumnElement[Any], values: Sequence[Any]) -> Any:
    """`column IN values`: on PostgreSQL `= ANY(array)`, one parameter however long the list."""
    if conn.dialect.name == "postgresql":
        array = sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == sa.any_(array)
    return column.in_(values)


def id_chunks(conn: Connection, items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Chunks for `in_list`: SQLite's parameter limit binds; an array parameter has none."""
    return chunks(items, 50_000 if conn.dialect.name == "postgresql" else IN_LIST_CHUNK)


def chunks(items: Sequence[T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
