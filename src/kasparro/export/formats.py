"""CSV and Parquet, written batch by batch.

CSV cells are protected against spreadsheet formula injection (OWASP "CSV Injection"): a text
cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with a single
quote, so a spreadsheet shows it as text instead of evaluating it. Only text cells (ids, names
of sources and runs) are ever prefixed: numbers and times are written by this module from typed
values (a float as its shortest exact decimal, a time as ISO 8601 UTC), so a number stays a
number a spreadsheet can sum, and a negative number (prices never are) would stay one too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from kasparro.export.query import COLUMNS, Row

FORMATS = ("csv", "parquet")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Parquet row groups of this many rows: large enough to compress well, small enough to hold.
ROW_GROUP_ROWS = 100_000
HEADER = [str(c.name) for c in COLUMNS]


class ParquetUnavailable(RuntimeError):
    """Parquet needs pyarrow, an optional extra."""

    def __init__(self) -> None:
        super().__init__(
            "Parquet export needs pyarrow, which is not installed: "
            "pip install 'kasparro[parquet]' (or ask for format csv)"
        )


def media_type(fmt: str) -> str:
    return "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"


def encode(fmt: str, batches: Iterable[list[Row]]) -> Iterator[bytes]:
    """The export's bytes, a chunk per batch of rows (Parquet: per row group)."""
    if fmt == "csv":
        return csv_chunks(batches)
    if fmt == "parquet":
        return parquet_chunks(batches)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_chunks(batches: Iterable[list[Row]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    # RFC 4180's CRLF: with it the csv module also quotes a field holding a lone CR.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    yield _drain(buffer)
    for batch in batches:
        writer.writerows([csv_cell(value) for value in row] for row in batch)
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


def parquet_chunks(batches: Iterable[list[Row]]) -> Iterator[bytes]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ParquetUnavailable() from None
    utc_time = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("observed_at", utc_time, False),
            ("asset_id", pa.string(), False),
            ("source", pa.string(), False),
            ("source_asset_id", pa.string(), False),
            ("price_usd", pa.float64(), False),
            ("market_cap_usd", pa.float64()),
            ("volume_24h_usd", pa.float64()),
            ("ingested_at", utc_time, False),
            ("run_id", pa.string(), False),
        ]
    )
    sink = _Sink()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        pending: list[Row] = []
        for batch in batches:
            pending.extend(batch)
            if len(pending) >= ROW_GROUP_ROWS:
                writer.write_table(_table(pa, schema, pending))
                pending = []
                yield sink.drain()
        if pending:
            writer.write_table(_table(pa, schema, pending))
    yield sink.drain()  # the footer, written on close


def _table(pa: Any, schema: Any, rows: Sequence[Row]) -> Any:
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


class _Sink(io.RawIOBase):
    """A write-only stream that keeps what was written until it is drained."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data
