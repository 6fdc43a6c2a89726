"""`kasparro quarantine list|show` and `kasparro etl replay`: what was refused, and loading it
once its cause is fixed."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Engine

quarantine_app = typer.Typer(
    help="Quarantined records: list them, show one (replay: `kasparro etl replay`).",
    no_args_is_help=True,
)
console = Console(stderr=True)

SourceOption = Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")]
RunOption = Annotated[str | None, typer.Option("--run", help="Only records of this run.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Only this reason_code (e.g. ambiguous_number).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts.")]


@quarantine_app.command("list")
def list_command(
    source: SourceOption = None,
    run: RunOption = None,
    reason: ReasonOption = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Quarantined records, newest first, with their reason."""
    from kasparro.api.queries.quarantine import QuarantineFilter, quarantine_page

    if source is not None:
        _known_sources([source])
    with _engine().connect() as conn:
        rows, total = quarantine_page(conn, QuarantineFilter(source, run, reason), limit=limit)
    items = [_item(row) for row in rows]
    if as_json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"quarantine: {len(items)} of {total}", show_lines=True)
    for column in ("id", "quarantined (UTC)", "source", "reason_code", "source asset", "reason"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            str(item["id"]),
            item["created_at"][:19].replace("T", " "),  # UTC, to the second
            item["source"],
            item["reason_code"],
            escape(item["source_asset_id"] or ""),
            escape(item["reason"]),
        )
    Console().print(table)


@quarantine_app.command("show")
def show_command(
    record_id: Annotated[int, typer.Argument(metavar="ID", help="The record's id.", min=1)],
    as_json: JsonOption = False,
) -> None:
    """One quarantined record: its reason, its run and its whole payload."""
    from kasparro.api.queries.quarantine import quarantined
    from kasparro.cli import _exit_with

    with _engine().connect() as conn:
        row = quarantined(conn, record_id)
    if row is None:
        _exit_with(f"no quarantined record with id {record_id} (replayed, or never quarantined)")
    item = _item(row)
    if as_json:
        typer.echo(json.dumps(item, ensure_ascii=False, indent=2))
        return
    table = Table(show_header=False, title=f"quarantined record {record_id}", show_lines=True)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in item.items():
        if key == "payload":
            value = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
        table.add_row(key, escape(str(value) if value is not None else ""))
    Console().print(table)


def replay(sources: list[str] | None, run_id: str | None, reason_code: str | None) -> None:
    """`kasparro etl replay`: replay the selected records, a run per source with any; the exit
    status of `etl run` when a replay does not succeed or a source is busy."""
    from kasparro.cli import EXIT_BUSY, EXIT_FAILURE, _exit_with, _settings
    from kasparro.db.engine import create_db_engine
    from kasparro.db.migrate import MigrationNotPermitted, upgrade
    from kasparro.etl.replay import Selection, replay_source, sources_to_replay
    from kasparro.etl.runner import SourceBusy
    from kasparro.logging import configure_logging

    settings = _settings()
    wanted = _known_sources(sources) if sources else None
    configure_logging(settings.log_level, settings.log_format)
    if settings.migrate_on_start:
        try:
            upgrade(settings.resolved_database_url)
        except MigrationNotPermitted as exc:
            _exit_with(str(exc))
    engine = create_db_engine(settings.resolved_database_url)
    selection = Selection(run_id=run_id, reason_code=reason_code)
    names = [n for n in sources_to_replay(engine, selection) if wanted is None or n in wanted]
    if not names:
        console.print("nothing to replay: no quarantined record matches")
        return
    table = Table(
        "source",
        "run",
        "status",
        "records",
        "left quarantine",
        "loaded",
        "still quarantined",
        "error",
        title="Quarantine replay",
    )
    for column in table.columns:
        column.overflow = "fold"
    failed = busy = False
    for name in names:
        try:
            with console.status(f"replaying {name}…"):
                result = replay_source(engine, settings, name, selection)
        except SourceBusy as exc:
            busy = True
            table.add_row(name, "", "[yellow]busy[/]", "", "", "", "", escape(str(exc)))
            continue
        failed |= result.status != "success"
        colour = {"success": "green", "degraded": "yellow"}.get(result.status, "red")
        table.add_row(
            name,
            result.run_id,
            f"[{colour}]{result.status}[/]",
            str(result.records_processed),
            str(result.records_processed - result.records_quarantined),
            str(result.records_loaded),
            str(result.records_quarantined),
            escape(result.error or ""),
        )
    Console().print(table)
    if failed:
        raise typer.Exit(EXIT_FAILURE)
    if busy:
        raise typer.Exit(EXIT_BUSY)


def _engine() -> Engine:
    from kasparro.cli import _settings
    from kasparro.db.engine import create_db_engine

    return create_db_engine(_settings().resolved_database_url)


def _known_sources(names: list[str]) -> list[str]:
    from kasparro.etl.runner import UnknownSource, check_sources

    try:
        return check_sources(names)
    except UnknownSource as exc:
        raise typer.BadParameter(str(exc)) from None


def _item(row: dict[str, Any]) -> dict[str, Any]:
    """A record as GET /quarantine/{id} answers it."""
    from kasparro.api.schemas import QuarantinedRecord

    return QuarantinedRecord.model_validate(row).model_dump(mode="json")
