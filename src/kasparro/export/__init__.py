"""Price history exports, streamed: rows leave the database in batches and leave the process as
CSV or Parquet bytes, so an export of any size runs in the same memory. `kasparro export
history` and `GET /export/history` both use it."""

from collections.abc import Iterator

from sqlalchemy.engine import Engine

from kasparro.export.formats import FORMATS, ParquetUnavailable, encode, media_type
from kasparro.export.query import COLUMNS, HistoryExport, history_batches


def stream(engine: Engine, export: HistoryExport, fmt: str) -> Iterator[bytes]:
    """The export's bytes, chunk by chunk: CSV written by PostgreSQL's COPY there, by Python
    on SQLite; Parquet from batches of rows (pyarrow)."""
    if fmt == "csv" and engine.dialect.name == "postgresql":
        from kasparro.export.copy_csv import copy_csv_chunks

        return copy_csv_chunks(engine, export)
    return encode(fmt, history_batches(engine, export))


__all__ = [
    "COLUMNS",
    "FORMATS",
    "HistoryExport",
    "ParquetUnavailable",
    "encode",
    "history_batches",
    "media_type",
    "stream",
]
