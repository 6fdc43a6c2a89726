"""`kasparro identity ...`: measure the resolver, list what it refused to guess."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

identity_app = typer.Typer(no_args_is_help=True)
console = Console()


@identity_app.command("evaluate")
def evaluate_command(
    crosswalk: Annotated[
        bool, typer.Option(help="Include the shipped crosswalk (and IDENTITY_CROSSWALK_PATH).")
    ] = True,
) -> None:
    """Precision and recall on the labeled set built from real vendor responses."""
    from kasparro.config import get_settings
    from kasparro.identity.crosswalk import Crosswalk, load_crosswalk
    from kasparro.identity.evaluate import evaluate

    walk = load_crosswalk(get_settings().identity_crosswalk_path) if crosswalk else Crosswalk()
    table = Table(title=f"identity resolution ({'with' if crosswalk else 'without'} crosswalk)")
    for column in ("order", "true pairs", "predicted", "correct", "precision", "recall"):
        table.add_column(column)
    table.add_column("ambiguous (reported)")
    scores = evaluate(walk)
    for s in scores:
        table.add_row(
            s.order,
            str(s.true_pairs),
            str(s.predicted),
            str(s.correct),
            f"{s.precision:.3f}",
            f"{s.recall:.3f}",
            str(s.ambiguous),
        )
    console.print(table)
    for s in scores:
        for pair in s.wrong:
            console.print(f"[red]wrong merge[/] ({s.order}): {pair[0]} + {pair[1]}")
        for pair in s.missed:
            console.print(f"[yellow]missed[/] ({s.order}): {pair[0]} + {pair[1]}")


@identity_app.command("reviews")
def reviews_command() -> None:
    """Source assets kept apart because their match was ambiguous, with their candidates."""
    import sqlalchemy as sa

    from kasparro.config import get_settings
    from kasparro.db.engine import create_db_engine
    from kasparro.db.schema import identity_reviews

    engine = create_db_engine(get_settings().resolved_database_url)
    table = Table(title="identity reviews")
    for column in ("source", "source asset", "kept as", "reason"):
        table.add_column(column)
    with engine.connect() as conn:
        for row in conn.execute(sa.select(identity_reviews).order_by(identity_reviews.c.source)):
            table.add_row(row.source, row.source_asset_id, row.asset_id, row.reason)
    console.print(table)
