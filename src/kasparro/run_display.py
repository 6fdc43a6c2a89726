"""What `kasparro etl run` shows: a progress line per source on a terminal, then a summary
table of the runs and their errors in full."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table


def progress(console: Console) -> Progress:
    """A line per source: records so far, their rate, the batch just committed. Terminals only:
    a log or a pipe gets the summary alone."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[records]:,} records"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[label]}"),
        console=console,
        disable=not console.is_terminal,
    )


class SourceProgress:
    """One source's line of the progress display, moved on by the runner after each batch."""

    def __init__(self, progress: Progress, name: str) -> None:
        self._progress = progress
        self._started = time.monotonic()
        self._task = progress.add_task(escape(name), total=None, records=0, rate="", label="")

    def batch(self, label: str, records: int) -> None:
        rate = records / max(time.monotonic() - self._started, 1e-3)
        self._progress.update(
            self._task, records=records, rate=f"{rate:,.0f} records/s", label=escape(label)
        )

    def done(self, status: str) -> None:
        # The total was unknown (the bar pulsed): it ends full.
        self._progress.update(self._task, total=1, completed=1, label=escape(status))


# (heading, key of a result) of the summary table; errors are listed under it, whole.
_SUMMARY = (
    ("source", "source"),
    ("status", "status"),
    ("processed", "records_processed"),
    ("loaded", "records_loaded"),
    ("unchanged", "records_unchanged"),
    ("quarantined", "records_quarantined"),
    ("ms", "duration_ms"),
)
_COLOURS = {"success": "green", "ok": "green", "busy": "yellow", "warning": "yellow"}


def print_summary(results: list[dict[str, Any]]) -> None:
    """The runs in a table whose cells are never cut short (a line per run where the terminal
    is too narrow for it), then each error in full, wrapped."""
    out = Console()
    cells = [[_text(result.get(key)) for _, key in _SUMMARY] for result in results]
    table = Table(title="ETL runs", box=box.SIMPLE_HEAD, pad_edge=False)
    for index, (heading, _) in enumerate(_SUMMARY):
        table.add_column(heading, justify="left" if index < 2 else "right", no_wrap=True)
    for row in cells:
        table.add_row(row[0], coloured(row[1]), *row[2:])
    # Measured unbounded: a console's own measure never reports more than its width.
    if Measurement.get(out, out.options.update_width(10_000), table).minimum <= out.width:
        out.print(table)
    else:
        for row in cells:
            counts = zip(_SUMMARY[2:], row[2:], strict=True)
            pairs = ", ".join(f"{heading} {cell}" for (heading, _), cell in counts)
            out.print(f"[bold]{row[0]}[/] {coloured(row[1])}: {pairs}")
    for result in results:
        name, error = result["source"], result.get("error")
        if error:  # most errors begin with their source's name already
            out.print(escape(error if error.startswith(f"{name}:") else f"{name}: {error}"))


def _text(value: object) -> str:
    return "" if value is None else escape(str(value))


def coloured(status: str) -> str:
    return f"[{_COLOURS.get(status, 'red')}]{status}[/]"
