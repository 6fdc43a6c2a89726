"""Small pieces every query module uses."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def contains(column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
    """Case-insensitive substring match; `%` and `_` in the text are literal."""
    return sa.func.lower(column).contains(text.lower(), autoescape=True)


def count_rows(conn: Connection, table: sa.Table, where: Sequence[sa.ColumnElement[bool]]) -> int:
    return int(conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where)) or 0)


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
