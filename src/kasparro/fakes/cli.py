"""`kasparro fakes [serve]`: every fake upstream on loopback until Ctrl-C."""

from __future__ import annotations

import time

import typer

from kasparro.fakes.server import FakeUpstreams

fakes_app = typer.Typer(
    help="Fake vendor APIs (CoinGecko, CoinPaprika, CoinMarketCap, CoinCap) on 127.0.0.1, "
    "for demos, tests and benchmarks.",
    no_args_is_help=False,
)

_COINS = typer.Option(300, "--coins", min=0, help="Coins in the fake universe.")
_CG_PORT = typer.Option(8101, "--coingecko-port", min=0, max=65535, help="0: any free port.")
_PP_PORT = typer.Option(8102, "--coinpaprika-port", min=0, max=65535, help="0: any free port.")
_SEED = typer.Option(7, "--seed", help="Seed of the generated coins.")


def _serve(coins: int, coingecko_port: int, coinpaprika_port: int, seed: int) -> None:
    typer.echo(f"Building a universe of {coins} coins (seed {seed})...")
    fakes = FakeUpstreams(
        coins=coins, seed=seed, coingecko_port=coingecko_port, coinpaprika_port=coinpaprika_port
    )
    fakes.universe.follow_wall_clock()
    with fakes:
        for name, url in fakes.urls().items():
            typer.echo(f"{name + ':':15} {url}")
        typer.echo("Point Kasparro at them with:")
        for setting, value in fakes.settings().items():
            if setting.endswith(("_base_url", "_api_key")) and value is not None:
                shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
                typer.echo(f"  export {setting.upper()}={shown}")
        typer.echo(
            "Admin: POST /__admin__/faults, DELETE /__admin__/faults, "
            "POST /__admin__/advance?seconds=600, GET /__admin__/requests (on each)."
        )
        typer.echo("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("Stopping.")


@fakes_app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    coins: int = _COINS,
    coingecko_port: int = _CG_PORT,
    coinpaprika_port: int = _PP_PORT,
    seed: int = _SEED,
) -> None:
    """Serve every fake (the default command)."""
    if ctx.invoked_subcommand is None:
        _serve(coins, coingecko_port, coinpaprika_port, seed)


@fakes_app.command()
def serve(
    coins: int = _COINS,
    coingecko_port: int = _CG_PORT,
    coinpaprika_port: int = _PP_PORT,
    seed: int = _SEED,
) -> None:
    """Serve every fake until Ctrl-C, printing the base URLs and the env vars to set."""
    _serve(coins, coingecko_port, coinpaprika_port, seed)
