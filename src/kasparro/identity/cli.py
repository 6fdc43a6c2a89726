"""`kasparro identity ...`: measure the resolver; correct identity (curation_cli.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kasparro.identity import curation_cli
from kasparro.identity.universe_eval import DEFAULT_SEED, NoiseModel

identity_app = typer.Typer(no_args_is_help=True)
console = Console()


REAL_UNIVERSE = "../shared/identity-eval"
_NOISE = NoiseModel()


@identity_app.command("evaluate")
def evaluate_command(
    crosswalk: Annotated[
        bool, typer.Option(help="Include the shipped crosswalk (and IDENTITY_CROSSWALK_PATH).")
    ] = True,
    universe: Annotated[
        bool,
        typer.Option(
            "--universe",
            help="Evaluate at scale instead: the listings in DIR (coingecko_list.json, "
            "coinpaprika_list.json, pairs.csv) with synthetic prices, through the real ETL.",
        ),
    ] = False,
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="The --universe directory.")
    ] = Path(REAL_UNIVERSE),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market data.")] = DEFAULT_SEED,
    price_sigma: Annotated[
        float, typer.Option(min=0, help="A true pair's price noise (sigma of the log ratio).")
    ] = _NOISE.price_sigma,
    cap_mismatch_share: Annotated[
        float,
        typer.Option(
            min=0,
            max=1,
            help=f"Share of true pairs whose market caps differ "
            f"{_NOISE.cap_mismatch_low}-{_NOISE.cap_mismatch_high}x.",
        ),
    ] = _NOISE.cap_mismatch_share,
    database_url: Annotated[
        str | None,
        typer.Option(help="An EMPTY scratch database for --universe (default: temporary SQLite)."),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="--universe: write the full report here.")
    ] = None,
) -> None:
    """Precision and recall on the labeled set built from real vendor responses (or, with
    --universe, on real listings with synthetic prices, through the real ETL)."""
    if universe:
        if not crosswalk:
            raise typer.BadParameter("--universe always runs with the shipped crosswalk")
        noise = replace(_NOISE, price_sigma=price_sigma, cap_mismatch_share=cap_mismatch_share)
        _universe(directory, seed, noise, database_url, json_path)
        return
    if directory != Path(REAL_UNIVERSE):
        raise typer.BadParameter("a directory is read only with --universe", param_hint="DIR")
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


def _universe(
    directory: Path, seed: int, noise: NoiseModel, database_url: str | None, json_path: Path | None
) -> None:
    from kasparro.identity.universe_eval import ScratchNotEmpty, evaluate_universe
    from kasparro.logging import configure_logging

    if not (directory / "pairs.csv").is_file():
        raise typer.BadParameter(f"{directory}: no pairs.csv there", param_hint="--universe")
    configure_logging("WARNING")  # the runs' own lines would drown the report
    try:
        report = evaluate_universe(
            directory,
            seed=seed,
            noise=noise,
            database_url=database_url,
            progress=lambda text: console.print(f"[dim]{text}[/]"),
        )
    except ScratchNotEmpty as exc:
        raise typer.BadParameter(str(exc), param_hint="--database-url") from None
    if json_path is not None:
        json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    _print_universe(report)


def _print_universe(report: dict[str, Any]) -> None:
    served = report["served"]
    table = Table(
        title=f"identity at scale: {served['coingecko']} CoinGecko and {served['coinpaprika']} "
        f"CoinPaprika coins, seed {report['seed']}"
    )
    columns = ("order", "level", "pairs", "links", "right", "wrong", "prec.", "recall")
    for column in (*columns, "review", "quar."):
        table.add_column(
            column,
            justify="left" if column in ("order", "level") else "right",
            no_wrap=True,  # never cut a figure or a name
            min_width={"order": len("coinpaprika then coingecko"), "level": 6}.get(
                column, len(column)
            ),
        )
    for order in report["orders"]:
        for level, s in order["levels"].items():
            table.add_row(
                order["order"] if level == "high" else "",
                level,
                *(str(s[k]) for k in ("true_pairs", "predicted", "correct", "wrong")),
                *("n/a" if s[k] is None else f"{s[k]:.3f}" for k in ("precision", "recall")),
                str(s["ambiguous"]),
                str(s["quarantined"]),
                end_section=level == "all",
            )
    console.print(table, width=max(console.width, 120), crop=False)  # never cut a figure
    for order in report["orders"]:
        console.print(
            f"{order['order']}: {order['links']} links ({order['unlabeled']} unlabeled), "
            f"{order['reviews']} reviews, quarantined {order['quarantined']}, "
            f"seconds {order['timings']}"
        )
    console.print(f"seconds: {report['timings']}")
    for order in report["orders"]:
        misses = Table(title=f"worst misses, {order['order']} (of {len(order['misses'])})")
        for column in ("level", "coingecko", "fate", "coinpaprika", "fate"):
            misses.add_column(column)
        for m in order["misses"][:20]:
            cg, cp = m["coingecko"], m["coinpaprika"]
            misses.add_row(m["confidence"], _coin(cg), cg["fate"], _coin(cp), cp["fate"])
        console.print(misses)
        for w in order["wrong"]:
            cg, cp = w["coingecko"], w["coinpaprika"]
            console.print(
                f"[red]wrong link[/] ({order['order']}, {w['confidence']}, {w['method']} "
                f"{w['score']}): {_coin(cg)} + {_coin(cp)}; true partners: "
                f"{cg['true_partner'] or '-'} / {cp['true_partner'] or '-'}"
            )


def _coin(side: dict[str, str]) -> str:
    return f"{side['id']} ({side['symbol']}, {side['name']})"


# merge, split, pin, reviews (list, accept, reject), audit, pins
curation_cli.register(identity_app)
