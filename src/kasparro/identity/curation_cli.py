"""`kasparro identity merge|split|pin|reviews|audit|pins`: correct identity without SQL.

Every correction needs `--reason` (the audit trail says why) and records `--actor` (default:
the operating-system user). A refusal is one plain line and exit status 1; nothing is written.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Connection, Engine

from kasparro.identity import curation
from kasparro.identity.curation import CurationError, Outcome, Who

console = Console()

ReasonOption = Annotated[
    str, typer.Option("--reason", "-r", help="Why (required; kept in the audit trail).")
]
ActorOption = Annotated[
    str | None,
    typer.Option(help="Who, for the audit trail (default: the operating-system user)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts.")]

reviews_app = typer.Typer(
    help="Source assets kept apart because their match was ambiguous: list, accept, reject.",
)


def register(identity_app: typer.Typer) -> None:
    identity_app.command("merge")(merge_command)
    identity_app.command("split")(split_command)
    identity_app.command("pin")(pin_command)
    identity_app.command("audit")(audit_command)
    identity_app.command("pins")(pins_command)
    identity_app.add_typer(reviews_app, name="reviews")


def merge_command(
    into: Annotated[str, typer.Argument(metavar="A", help="The asset that stays.")],
    other: Annotated[str, typer.Argument(metavar="B", help="The asset that joins A and goes.")],
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge B into A: B's members, latest values and history move to A in one transaction; B's
    id redirects to A. Refused if A and B each hold an asset of the same source."""
    _apply(lambda conn, who: curation.merge(conn, into, other, who), actor, reason, as_json)


def split_command(
    asset_id: Annotated[str, typer.Argument(metavar="ASSET", help="The asset to split.")],
    member: Annotated[str, typer.Argument(metavar="SOURCE:ID", help="The member that leaves.")],
    reason: ReasonOption,
    to: Annotated[
        str | None, typer.Option("--to", help="An existing asset to move it to (default: new).")
    ] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Split SOURCE:ID out of ASSET, with its history, into a new asset (or --to one); pinned
    there, so the ETL never puts it back."""
    key = _member(member)
    _apply(
        lambda conn, who: curation.split(conn, asset_id, key, who, to=to), actor, reason, as_json
    )


def pin_command(
    member: Annotated[str, typer.Argument(metavar="SOURCE:ID", help="The source asset.")],
    asset_id: Annotated[str, typer.Argument(metavar="ASSET", help="The asset it is.")],
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pin SOURCE:ID to ASSET: moved there now (with its history) if it is loaded, and linked
    there whenever it loads; pins come before the resolver and the crosswalk file."""
    key = _member(member)
    _apply(lambda conn, who: curation.pin(conn, key, asset_id, who), actor, reason, as_json)


@reviews_app.callback(invoke_without_command=True)
def reviews_command(
    ctx: typer.Context,
    status: Annotated[
        str, typer.Option(help="open, accepted, rejected, curated, or all.")
    ] = "open",
    source: Annotated[str | None, typer.Option("--source", "-s", help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List reviews (open ones by default); `reviews accept|reject SOURCE:ID` decides one."""
    if ctx.invoked_subcommand is not None:
        return
    from kasparro.api.queries.identity import reviews_page

    if status != "all" and status not in curation.REVIEW_STATUSES:
        raise typer.BadParameter(
            f"expected one of {', '.join(curation.REVIEW_STATUSES)} or all", param_hint="--status"
        )
    with _engine().connect() as conn:
        rows, total = reviews_page(
            conn, status=None if status == "all" else status, source=source, limit=limit
        )
    if as_json:
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"identity reviews ({status}): {len(rows)} of {total}", show_lines=True)
    for column in ("source asset", "kept as", "status", "reason", "candidates"):
        table.add_column(column, overflow="fold")
    for row in rows:
        candidates = ", ".join(f"{c.get('asset_id')} {c.get('score')}" for c in row["candidates"])
        decided = (
            f"\nby {row['decided_by']} -> {row['decided_asset_id']}" if row["decided_by"] else ""
        )
        table.add_row(
            escape(f"{row['source']}:{row['source_asset_id']}"),
            escape(row["kept_as"]),
            escape(row["status"] + decided),
            escape(row["reason"]),
            escape(candidates),
        )
    console.print(table)


@reviews_app.command("accept")
def accept_command(
    member: Annotated[str, typer.Argument(metavar="SOURCE:ID", help="The reviewed source asset.")],
    reason: ReasonOption,
    asset_id: Annotated[
        str | None, typer.Option("--asset", help="The asset it is (default: the best candidate).")
    ] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """It is the candidate: moved there with its history (its own asset goes if left empty)."""
    key = _member(member)
    _apply(
        lambda conn, who: curation.accept_review(conn, key, who, asset_id=asset_id),
        actor,
        reason,
        as_json,
    )


@reviews_app.command("reject")
def reject_command(
    member: Annotated[str, typer.Argument(metavar="SOURCE:ID", help="The reviewed source asset.")],
    reason: ReasonOption,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """It is none of the candidates: it stays apart, pinned to its own asset."""
    key = _member(member)
    _apply(lambda conn, who: curation.reject_review(conn, key, who), actor, reason, as_json)


def audit_command(
    asset_id: Annotated[
        str | None, typer.Option("--asset", help="Only actions on this asset.")
    ] = None,
    action: Annotated[str | None, typer.Option(help="merge, split, pin, accept or reject.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The identity audit trail: who changed what, when and why, with before and after."""
    from kasparro.api.queries.identity import audit_page

    with _engine().connect() as conn:
        rows, total = audit_page(conn, asset_id=asset_id, action=action, limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"identity audit: {len(rows)} of {total}", show_lines=True)
    for column in ("id", "at (UTC)", "action", "actor", "assets", "reason"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]),
            f"{row['at']:%Y-%m-%d %H:%M:%S}",
            row["action"],
            escape(row["actor"]),
            escape(" <- ".join(a for a in (row["asset_id"], row["other_asset_id"]) if a)),
            escape(row["reason"]),
        )
    console.print(table)


def pins_command(
    asset_id: Annotated[
        str | None, typer.Option("--asset", help="Only pins to this asset.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """The persisted crosswalk: source assets a person pinned to an asset."""
    from kasparro.api.queries.identity import pins_page

    with _engine().connect() as conn:
        rows, total = pins_page(conn, asset_id=asset_id, limit=limit)
    if as_json:
        typer.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"identity pins: {len(rows)} of {total}")
    for column in ("source asset", "asset", "by", "audit"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            escape(f"{row['source']}:{row['source_asset_id']}"),
            escape(row["asset_id"]),
            escape(f"{row['actor']} ({row['action']})"),
            str(row["audit_id"]),
        )
    console.print(table)


def _apply(
    operation: Callable[[Connection, Who], Outcome],
    actor: str | None,
    reason: str,
    as_json: bool,
) -> None:
    from kasparro.cli import _exit_with, _settings
    from kasparro.db.engine import write_transaction
    from kasparro.db.migrate import MigrationNotPermitted, upgrade
    from kasparro.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)  # logs on stderr, never stdout
    if settings.migrate_on_start:  # as `etl run` does: the tables this writes may be new
        try:
            upgrade(settings.resolved_database_url)
        except MigrationNotPermitted as exc:
            _exit_with(str(exc))
    try:
        who = Who(
            actor="cli:" + curation.check_actor(actor if actor is not None else _os_user()),
            reason=curation.check_reason(reason),
            at=datetime.now(UTC),
        )
        engine = _engine()
        with write_transaction(engine) as conn:
            outcome = operation(conn, who)
    except CurationError as exc:
        _exit_with(str(exc))
    curation.refresh_consensus(engine, settings, outcome)
    if as_json:
        typer.echo(json.dumps(_outcome(outcome), default=str, ensure_ascii=False, indent=2))
        return
    after = outcome.after
    moved = after.get("rows_moved", {})
    console.print(
        f"{outcome.action}: done (identity audit {outcome.audit_id}); now in "
        f"{escape(outcome.asset_id)}: "
        + ", ".join(m["member"] for m in after["assets"][outcome.asset_id]["members"])
        + (f"; history rows moved: {moved.get('price_history', 0)}" if moved else "")
        + "".join(f"; {escape(k)} {v}" for k, v in after.get("removed", {}).items())
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a name
        raise CurationError("no operating-system user name here: give --actor") from None


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {
        "audit_id": outcome.audit_id,
        "action": outcome.action,
        "asset_id": outcome.asset_id,
        "before": outcome.before,
        "after": outcome.after,
    }


def _member(text: str) -> tuple[str, str]:
    from kasparro.cli import _exit_with

    try:
        key = curation.parse_member(text)
    except CurationError as exc:
        _exit_with(str(exc))
    from kasparro.etl.runner import UnknownSource, check_sources

    try:
        check_sources([key[0]])
    except UnknownSource as exc:
        raise typer.BadParameter(str(exc), param_hint="SOURCE:ID") from None
    return key


def _engine() -> Engine:
    from kasparro.cli import _settings
    from kasparro.db.engine import create_db_engine

    return create_db_engine(_settings().resolved_database_url)
