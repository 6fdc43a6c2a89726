"""The `kasparro` command line: serve, run the ETL, manage the database, fakes and evaluations."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kasparro.config import Settings, get_settings

app = typer.Typer(help="Kasparro: unified crypto market data, self-hosted.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations and maintenance.", no_args_is_help=True)
etl_app = typer.Typer(help="Run the ETL.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(etl_app, name="etl")
console = Console(stderr=True)


def _mount_optional_apps() -> None:
    from kasparro.fakes.cli import fakes_app
    from kasparro.identity.cli import identity_app

    app.add_typer(fakes_app, name="fakes", help="Serve the fake CoinGecko and CoinPaprika APIs.")
    app.add_typer(identity_app, name="identity", help="Canonical identity tools.")


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
    """Delete price history older than the retention (a source asset's latest row is kept)."""
    from kasparro.db.engine import create_db_engine
    from kasparro.db.retention import prune_history

    settings = _settings()
    days = older_than_days or settings.history_retention_days
    if not days:
        raise typer.BadParameter("give --older-than-days or set HISTORY_RETENTION_DAYS")
    engine = create_db_engine(settings.resolved_database_url)
    deleted = prune_history(engine, older_than=timedelta(days=days))
    console.print(f"deleted {deleted} history rows older than {days} days")


@db_app.command("partition-history")
def db_partition_history() -> None:
    """PostgreSQL only: convert price_history into monthly range partitions on observed_at."""
    from kasparro.db.engine import create_db_engine
    from kasparro.db.retention import ensure_partitions, partition_price_history

    settings = _settings()
    engine = create_db_engine(settings.resolved_database_url)
    if engine.dialect.name != "postgresql":
        raise typer.BadParameter("partitioning needs PostgreSQL (DATABASE_URL)")
    partition_price_history(engine)
    ensure_partitions(engine)
    console.print("[green]price_history is partitioned by month[/]")


@etl_app.command("run")
def etl_run(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", help="Source to run (repeatable); default: all enabled."),
    ] = None,
) -> None:
    """Run the ETL once, in the foreground; exits 1 if a run fails, 2 if a source is busy."""
    from kasparro.db.engine import create_db_engine
    from kasparro.db.migrate import MigrationNotPermitted, upgrade
    from kasparro.etl.runner import (
        SourceBusy,
        UnknownSource,
        enabled_sources,
        run_source,
        warm_up,
    )
    from kasparro.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    warm_up()  # while the migrations are checked
    if settings.migrate_on_start:
        try:
            upgrade(settings.resolved_database_url)
        except MigrationNotPermitted as exc:
            _exit_with(str(exc))
    engine = create_db_engine(settings.resolved_database_url)
    names = source or enabled_sources(settings)
    table = Table(
        "source",
        "status",
        "processed",
        "loaded",
        "unchanged",
        "quarantined",
        "ms",
        "error",
        title="ETL runs",
    )
    failed = busy = False
    for name in names:
        try:
            with console.status(f"running {name}…"):
                result = run_source(engine, settings, name, trigger="cli")
        except UnknownSource as exc:
            raise typer.BadParameter(str(exc)) from None
        except SourceBusy as exc:
            busy = True
            table.add_row(name, "[yellow]busy[/]", "", "", "", "", "", str(exc))
            continue
        failed |= result.status != "success"
        colour = "green" if result.status == "success" else "red"
        table.add_row(
            name,
            f"[{colour}]{result.status}[/]",
            str(result.records_processed),
            str(result.records_loaded),
            str(result.records_unchanged),
            str(result.records_quarantined),
            str(result.duration_ms),
            result.error or "",
        )
    Console().print(table)
    if failed:
        raise typer.Exit(1)
    if busy:
        raise typer.Exit(2)


def _settings() -> Settings:
    """The settings, or exit with a plain message saying what is wrong (never a value)."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            name = "_".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(message if name in message else f"{name}: {message}")
        _exit_with("invalid settings: " + "; ".join(problems))


def _exit_with(message: str) -> NoReturn:
    """A plain message naming the cause, on one line, no traceback; exit status 1."""
    console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


_mount_optional_apps()


if __name__ == "__main__":
    app()
