"""Dialect-aware statement helpers: upserts and chunked IN-lists, the same on both databases."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

T = TypeVar("T")

# Well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement.
IN_LIST_CHUNK = 900


def insert_for(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that supports ON CONFLICT on the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database: {conn.dialect.name}")


def insert_ignore(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING for many rows; returns how many were new."""
    if not rows:
        return 0
    pk = list(table.primary_key.columns)[:1]
    stmt = insert_for(conn, table).on_conflict_do_nothing().returning(*pk)
    return len(conn.execute(stmt, list(rows)).all())


def chunks(items: Sequence[T], size: int = IN_LIST_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
