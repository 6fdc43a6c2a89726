"""`kasparro fakes [serve]`: both fake upstreams on loopback until Ctrl-C."""

from __future__ import annotations

import time

import typer

from kasparro.fakes.server import FakeUpstreams

fakes_app = typer.Typer(
    help="Fake CoinGecko and CoinPaprika APIs on 127.0.0.1, for demos, tests and benchmarks.",
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
    with fakes:
        typer.echo(f"CoinGecko (public plan):  {fakes.coingecko_url}")
        typer.echo(f"CoinPaprika (paid plan):  {fakes.coinpaprika_url}")
        typer.echo("Point Kasparro at them with:")
        typer.echo(f"  export COINGECKO_BASE_URL={fakes.coingecko_url}")
        typer.echo(f"  export COINPAPRIKA_BASE_URL={fakes.coinpaprika_url}")
        typer.echo(
            "Admin: POST /__admin__/faults, DELETE /__admin__/faults, "
            "POST /__admin__/advance?seconds=600, GET /__admin__/requests (on both)."
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
    """Serve both fakes (the default command)."""
    if ctx.invoked_subcommand is None:
        _serve(coins, coingecko_port, coinpaprika_port, seed)


@fakes_app.command()
def serve(
    coins: int = _COINS,
    coingecko_port: int = _CG_PORT,
    coinpaprika_port: int = _PP_PORT,
    seed: int = _SEED,
) -> None:
    """Serve both fakes until Ctrl-C, printing the base URLs and the env vars to set."""
    _serve(coins, coingecko_port, coinpaprika_port, seed)
