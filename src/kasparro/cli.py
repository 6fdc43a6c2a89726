"""The `kasparro` command line: serve, run the ETL, manage the database, fakes and evaluations."""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from kasparro import redaction
from kasparro.config import (
    SettingError,
    Settings,
    check_database_directory,
    get_settings,
    settings_problems,
)
from kasparro.doctor import DoctorRow, database_problem, database_rows, source_rows
from kasparro.run_display import SourceProgress, coloured, print_summary, progress

# Exit statuses a script or an orchestrator can act on (also in `kasparro --help`).
EXIT_FAILURE = 1  # a run failed, or anything else
EXIT_CONFIG = 2  # a setting is refused (and click's usage errors)
EXIT_DATABASE = 3  # the database in DATABASE_URL cannot be reached or opened
EXIT_ADDRESS = 4  # API_HOST:API_PORT cannot be listened on (the port is taken)
EXIT_BUSY = 5  # etl run: a source is already running elsewhere
EXIT_CODES = f"""Exit codes: 0 done; {EXIT_FAILURE} a run failed, or another error;
{EXIT_CONFIG} a setting is refused (the message names it); {EXIT_DATABASE} the database cannot be
reached or opened; {EXIT_ADDRESS} the API's port is taken (or its address unusable); {EXIT_BUSY} a
source is busy (etl run). --debug or LOG_LEVEL=DEBUG adds the traceback."""
DEBUG_KEY = "kasparro.debug"


class _PlainErrors(TyperGroup):
    """Errors a person fixes (a setting, the database, the port) as one plain line naming the
    cause, with an exit status of their own; the traceback only when debugging."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except Exception as exc:
            plain = _plain_error(exc)
            if plain is None:
                raise
            code, message = plain
            if _debugging(ctx.meta):
                sys.stderr.write(redaction.redact("".join(traceback.format_exception(exc))))
            console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=_PlainErrors,
    help="Kasparro: unified crypto market data, self-hosted.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database migrations and maintenance.", no_args_is_help=True)
etl_app = typer.Typer(help="Run the ETL.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(etl_app, name="etl")
console = Console(stderr=True)


def _mount_optional_apps() -> None:
    from kasparro.consensus.cli import consensus_app
    from kasparro.export.cli import export_app
    from kasparro.fakes.cli import fakes_app
    from kasparro.identity.cli import identity_app
    from kasparro.quarantine_cli import quarantine_app

    app.add_typer(export_app, name="export")
    app.add_typer(
        fakes_app, name="fakes", help="Serve the fake upstream APIs of the installed sources."
    )
    app.add_typer(identity_app, name="identity", help="Canonical identity tools.")
    app.add_typer(consensus_app, name="consensus", help="Consensus reference prices.")
    app.add_typer(quarantine_app, name="quarantine")


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error, not only its cause.")
    ] = False,
) -> None:
    """Kasparro: unified crypto market data, self-hosted."""
    ctx.meta[DEBUG_KEY] = debug


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (API_PORT).")] = None,
) -> None:
    """Apply migrations (unless MIGRATE_ON_START=false), start the scheduled ETL and serve the
    HTTP API."""
    from kasparro.db.migrate import MigrationNotPermitted
    from kasparro.serve import serve as serve_api

    settings = _settings()
    try:
        serve_api(settings, host or settings.api_host, port or settings.api_port)
    except MigrationNotPermitted as exc:
        _exit_with(str(exc))


@app.command()
def demo(
    coins: Annotated[int, typer.Option(help="Coins in the fake upstreams.")] = 300,
    port: Annotated[int | None, typer.Option(help="Port of the API.")] = None,
) -> None:
    """Start both fake upstreams, then the service fed by them: all four sources populated."""
    from kasparro.demo import run_demo

    _settings()  # refused settings: a plain message, before anything starts
    run_demo(coins=coins, port=port)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration (the same path `serve` takes at start)."""
    from kasparro.db.migrate import MigrationNotPermitted, upgrade

    settings = _settings()
    try:
        upgrade(settings.resolved_database_url)
    except MigrationNotPermitted as exc:
        _exit_with(str(exc))
    console.print("[green]database is at the latest migration[/]")


@db_app.command("prune-history")
def db_prune_history(
    older_than_days: Annotated[
        int | None, typer.Option(help="Defaults to HISTORY_RETENTION_DAYS.", min=1)
    ] = None,
) -> None:
    """Delete price history older than the retention: on PostgreSQL whole months are dropped
    (without blocking reads), then older rows pruned (a source asset's latest row is kept)."""
    from kasparro.db.engine import create_db_engine
    from kasparro.db.retention import retain_history

    settings = _settings()
    days = older_than_days or settings.history_retention_days
    if not days:
        raise typer.BadParameter("give --older-than-days or set HISTORY_RETENTION_DAYS")
    engine = create_db_engine(settings.resolved_database_url)
    dropped, deleted = retain_history(engine, older_than=timedelta(days=days))
    if dropped:
        console.print(f"dropped {len(dropped)} partitions: {', '.join(dropped)}")
    console.print(f"deleted {deleted} history rows older than {days} days")


@db_app.command("partition-history")
def db_partition_history(
    ahead: Annotated[int, typer.Option(help="Months to create past this one.", min=0)] = 3,
) -> None:
    """PostgreSQL only: create price history's monthly partitions up to AHEAD months from now
    (migrations and ETL runs do it too; run it as the schema's owner)."""
    from kasparro.db import partitions
    from kasparro.db.engine import create_db_engine

    settings = _settings()
    engine = create_db_engine(settings.resolved_database_url)
    if not partitions.is_partitioned(engine):
        raise typer.BadParameter(
            "price_history is not partitioned: that needs PostgreSQL and `kasparro db upgrade`"
        )
    created = partitions.ensure_partitions(engine, ahead=ahead)
    console.print(f"[green]partitions created: {', '.join(created) or 'none needed'}[/]")


@etl_app.command("run")
def etl_run(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Source to run (repeatable); default: all enabled."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON on stdout, for scripts.")
    ] = False,
) -> None:
    """Run the ETL once, in the foreground, showing each source's progress; exits 1 if a run
    fails, 5 if a source is busy."""
    from kasparro.consensus.refresh import refresh_after_runs
    from kasparro.db.engine import create_db_engine
    from kasparro.db.migrate import MigrationNotPermitted, upgrade
    from kasparro.etl.runner import (
        SourceBusy,
        UnknownSource,
        check_sources,
        enabled_sources,
        run_source,
        warm_up,
    )
    from kasparro.logging import configure_logging

    settings = _settings()
    try:
        names = check_sources(source or enabled_sources(settings))
    except UnknownSource as exc:
        raise typer.BadParameter(str(exc)) from None
    configure_logging(settings.log_level, settings.log_format)
    warm_up()  # while the migrations are checked
    if settings.migrate_on_start:
        try:
            upgrade(settings.resolved_database_url)
        except MigrationNotPermitted as exc:
            _exit_with(str(exc))
    engine = create_db_engine(settings.resolved_database_url)
    results: list[dict[str, Any]] = []
    with progress(console) as shown_progress:
        for name in names:
            shown = SourceProgress(shown_progress, name)
            try:
                result = run_source(engine, settings, name, trigger="cli", on_batch=shown.batch)
            except SourceBusy as exc:
                shown.done("busy")
                results.append({"source": name, "status": "busy", "error": str(exc)})
                continue
            shown.done(result.status)
            results.append(asdict(result))
    # The reference prices of the assets these runs changed (logs, never raises).
    refresh_after_runs(engine, settings, [r["run_id"] for r in results if "run_id" in r])
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:
        print_summary(results)
    if any(r["status"] not in ("success", "busy") for r in results):
        raise typer.Exit(EXIT_FAILURE)
    if any(r["status"] == "busy" for r in results):
        raise typer.Exit(EXIT_BUSY)


@app.command()
def doctor() -> None:
    """Check the settings, the database and its migrations, and each enabled source (one cheap
    request or read each), in a table; exits 1 if any check is an error."""
    rows = _doctor_rows()
    table = Table(title="kasparro doctor")
    table.add_column("check", overflow="fold", min_width=max(len(check) for check, _, _ in rows))
    table.add_column("status", min_width=7)
    table.add_column("detail", overflow="fold")
    for check, status, detail in rows:
        table.add_row(escape(check), coloured(status), escape(detail))
    Console().print(table)
    if any(status == "error" for _, status, _ in rows):
        raise typer.Exit(EXIT_FAILURE)


def _doctor_rows() -> list[DoctorRow]:
    try:
        settings = _settings()
    except (ValidationError, SettingError) as exc:
        plain = _plain_error(exc)
        return [("configuration", "error", plain[1] if plain else str(exc))]
    return [
        ("configuration", "ok", "every setting is valid"),
        *database_rows(settings),
        *source_rows(settings),
    ]


def _settings() -> Settings:
    """The settings, checked before anything starts: a refused one raises, and `_PlainErrors`
    prints what is wrong (never a secret's value)."""
    settings = get_settings()
    check_database_directory(settings)
    return settings


def _plain_error(exc: Exception) -> tuple[int, str] | None:
    """The exit status and one-line message of an error a person can fix; None for the rest."""
    import sqlalchemy as sa

    from kasparro.db.migrate import MigrationNotPermitted
    from kasparro.serve import AddressUnavailable, ServerFailed

    if isinstance(exc, ValidationError) and exc.title == Settings.__name__:
        return EXIT_CONFIG, "invalid settings: " + "; ".join(settings_problems(exc))
    if isinstance(exc, SettingError):
        return EXIT_CONFIG, f"invalid settings: {exc}"
    if isinstance(exc, AddressUnavailable):
        return EXIT_ADDRESS, str(exc)
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return EXIT_DATABASE, database_problem(exc)
    if isinstance(exc, MigrationNotPermitted | ServerFailed):
        return EXIT_FAILURE, str(exc)
    return None


def _debugging(meta: dict[str, Any]) -> bool:
    """--debug, or LOG_LEVEL=DEBUG (from the settings, or the environment when they are bad)."""
    if meta.get(DEBUG_KEY):
        return True
    try:
        return get_settings().log_level == "DEBUG"
    except ValidationError:
        return os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG"


def _exit_with(message: str) -> NoReturn:
    """A plain message naming the cause, on one line, no traceback; exit status 1."""
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


@etl_app.command("replay")
def etl_replay(
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Repeatable.")] = None,
    run: Annotated[str | None, typer.Option(help="Only records this run quarantined.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason_code.")] = None,
) -> None:
    """Load the quarantined records whose cause was fixed (a run per source, trigger `replay`);
    the others stay quarantined. Exit status as for `etl run`."""
    from kasparro.quarantine_cli import replay

    replay(source, run, reason)


_mount_optional_apps()


if __name__ == "__main__":
    app()
