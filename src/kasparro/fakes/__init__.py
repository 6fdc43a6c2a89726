"""Faithful fakes of the vendors' HTTP APIs (CoinGecko, CoinPaprika, CoinMarketCap, CoinCap), on
loopback, for tests and demos.

from kasparro.fakes import FakeUpstreams, Fault

with FakeUpstreams(coins=300) as fake:
    fake.state.faults.append(Fault("rate_limit", retry_after=2))
    settings = settings.model_copy(update=fake.settings())  # every API source on its fake
"""

from kasparro.fakes.coincap import coincap_app
from kasparro.fakes.coingecko import coingecko_app
from kasparro.fakes.coinmarketcap import coinmarketcap_app
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
    "coincap_app",
    "coingecko_app",
    "coinmarketcap_app",
    "coinpaprika_app",
]
