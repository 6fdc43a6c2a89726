"""`kasparro export history`: the same export as GET /export/history, to a file or stdout."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from kasparro.export import stream
from kasparro.export.formats import FORMATS, ParquetUnavailable
from kasparro.export.query import HistoryExport

export_app = typer.Typer(
    help="Export price history (CSV or Parquet), streamed.", no_args_is_help=True
)


# ISO 8601, with or without a time and an offset ("Z" included); without one, UTC.
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]


def _instant(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@export_app.command("history")
def history(
    start: Annotated[
        datetime,
        typer.Option(
            "--from", formats=TIME_FORMATS, help="Observed at or after (ISO 8601; naive means UTC)."
        ),
    ],
    end: Annotated[
        datetime, typer.Option("--to", formats=TIME_FORMATS, help="Observed before (exclusive).")
    ],
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    asset: Annotated[
        list[str] | None, typer.Option("--asset", help="Only this canonical asset (repeatable).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default: stdout.")
    ] = None,
) -> None:
    """Write the history of [from, to), ordered by time, as CSV or Parquet; memory stays flat
    whatever the size. Text cells of CSV are protected against formula injection."""
    from kasparro.cli import _exit_with, _settings
    from kasparro.db.engine import create_db_engine

    if fmt not in FORMATS:
        raise typer.BadParameter(f"expected one of {', '.join(FORMATS)}", param_hint="--format")
    job = HistoryExport(
        start=_instant(start), end=_instant(end), source=source, asset_ids=tuple(asset or ())
    )
    if job.end <= job.start:
        raise typer.BadParameter("must be after --from", param_hint="--to")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401 - only whether it is installed
        except ImportError:
            _exit_with(str(ParquetUnavailable()))
    settings = _settings()
    engine = create_db_engine(settings.resolved_database_url)
    try:
        with output.open("wb") if output else nullcontext(sys.stdout.buffer) as sink:
            for chunk in stream(engine, job, fmt):
                sink.write(chunk)
            sink.flush()
    finally:
        engine.dispose()
