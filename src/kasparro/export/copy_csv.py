"""CSV written by PostgreSQL itself (`COPY (SELECT ...) TO STDOUT`), a day at a time.

The same rows and cells as the Python writer's (formats.csv_chunks, SQLite) but for two forms:
lines end with LF (COPY's), not CRLF, and PostgreSQL writes a float's shortest exact decimal as
`1e+12` or `1000` where Python writes `1000000000000.0` and `1000.0`; both read back as the
same float, in a spreadsheet too.
Formatting in C instead of a Python call per cell is what lets an export keep up with the
database (measured in bench/scale.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine

from kasparro.db.schema import price_history
from kasparro.export.formats import FORMULA_STARTS, HEADER
from kasparro.export.query import HistoryExport, windows

CHUNK_BYTES = 256 * 1024
_FORMULA = "^[" + "".join("\\" + c if c in "-\\]^" else c for c in FORMULA_STARTS) + "]"


def _time(column: Any) -> Any:
    """ISO 8601 UTC with a Z, microseconds only when there are any (as Python's isoformat)."""
    text = sa.func.to_char(
        sa.func.timezone("UTC", column), sa.literal_column("'YYYY-MM-DD\"T\"HH24:MI:SS.US'")
    )
    return sa.func.replace(text, ".000000", "") + "Z"


def _text(column: Any) -> Any:
    """Text a spreadsheet could run as a formula, prefixed with a quote (see formats.py)."""
    return sa.case((column.op("~")(_FORMULA), sa.literal("'") + column), else_=column)


def _columns() -> list[Any]:
    c = price_history.c
    return [
        _time(c.observed_at),
        _text(c.asset_id),
        _text(c.source),
        _text(c.source_asset_id),
        c.price_usd,
        c.market_cap_usd,
        c.volume_24h_usd,
        _time(c.ingested_at),
        _text(c.run_id),
    ]


def copy_csv_chunks(engine: Engine, export: HistoryExport) -> Iterator[bytes]:
    """The CSV file of `export`, as PostgreSQL writes it: a header line, then one COPY per day."""
    yield (",".join(HEADER) + "\n").encode()
    order = (price_history.c.observed_at, price_history.c.source, price_history.c.source_asset_id)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    pending = bytearray()
    with engine.connect() as conn:
        driver: Any = conn.connection.dbapi_connection
        for lo, hi in list(windows(conn, export.start, export.end)):
            query = sa.select(*_columns()).where(*export.where(lo, hi)).order_by(*order)
            # COPY takes no server-side parameters: the values are bound into the text by
            # SQLAlchemy's PostgreSQL literal rendering (times, ids: quoted and escaped).
            sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
            ):
                for row in copy:  # COPY sends a message per row: send on in chunks
                    pending += row
                    if len(pending) >= CHUNK_BYTES:
                        yield bytes(pending)
                        pending.clear()
        conn.rollback()
    if pending:
        yield bytes(pending)
