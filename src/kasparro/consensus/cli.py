"""`kasparro consensus compute`: compute and store reference prices now."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

consensus_app = typer.Typer(no_args_is_help=True)


@consensus_app.command("compute")
def compute_command(
    asset: Annotated[
        list[str] | None,
        typer.Option("--asset", "-a", help="Canonical asset id (repeatable); default: every one."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts.")] = False,
) -> None:
    """Compute the reference price of every asset with a source price (or of --asset), as of
    each one's newest observation, and store it (a row is rewritten only when it changed)."""
    from kasparro.cli import _settings
    from kasparro.consensus.refresh import compute_now
    from kasparro.consensus.store import priced_assets
    from kasparro.db.engine import create_db_engine
    from kasparro.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)  # on stderr: stdout is the result
    engine = create_db_engine(settings.resolved_database_url)
    try:
        if asset:
            with engine.connect() as conn:
                known = set(priced_assets(conn, asset))
            missing = sorted(set(asset) - known)
            if missing:
                raise typer.BadParameter(
                    f"no source price for asset(s) {', '.join(missing)} (unknown, or never "
                    "priced): see GET /assets",
                    param_hint="--asset",
                )
        summary = compute_now(engine, settings, asset)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(asdict(summary), indent=2))
        return
    table = Table(title="reference prices computed")
    for column in ("assets", "rows written", "ok", "single source", "disputed"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{summary.assets:,}",
        f"{summary.written:,}",
        f"{summary.statuses.get('ok', 0):,}",
        f"{summary.single_source:,}",
        f"{summary.statuses.get('disputed', 0):,}",
    )
    Console().print(table)
    Console(stderr=True).print(f"in {summary.seconds:.2f} s")
