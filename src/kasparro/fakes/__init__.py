"""Faithful fakes of the CoinGecko and CoinPaprika HTTP APIs, on loopback, for tests and demos.

from kasparro.fakes import FakeUpstreams, Fault

with FakeUpstreams(coins=300) as fake:
    fake.state.faults.append(Fault("rate_limit", retry_after=2))
    ...  # COINGECKO_BASE_URL=fake.coingecko_url, COINPAPRIKA_BASE_URL=fake.coinpaprika_url
"""

from kasparro.fakes.coingecko import coingecko_app
from kasparro.fakes.coinpaprika import coinpaprika_app
from kasparro.fakes.faults import FakeState, Fault
from kasparro.fakes.server import FakeServer, FakeUpstreams
from kasparro.fakes.universe import Universe

__all__ = [
    "FakeServer",
    "FakeState",
    "FakeUpstreams",
    "Fault",
    "Universe",
    "coingecko_app",
    "coinpaprika_app",
]
