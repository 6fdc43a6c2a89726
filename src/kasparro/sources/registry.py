"""Build a source by name from the settings."""

from __future__ import annotations

from kasparro.config import Settings
from kasparro.sources.base import Source
from kasparro.sources.coingecko import CoinGeckoSource
from kasparro.sources.coinpaprika import CoinPaprikaSource
from kasparro.sources.csv_files import CsvSource

# Sources that read only what is new since their checkpoint (a run finding nothing is normal).
INCREMENTAL = frozenset({"csv", "csv_weird"})


def is_incremental(name: str) -> bool:
    return name in INCREMENTAL


def build_source(settings: Settings, name: str) -> Source:
    if name == "coingecko":
        return CoinGeckoSource(settings)
    if name == "coinpaprika":
        return CoinPaprikaSource(settings)
    if name in ("csv", "csv_weird"):
        path = settings.csv_path if name == "csv" else settings.csv_weird_path
        return CsvSource(name, path, settings.etl_batch_size, settings.csv_settle_seconds)
    raise ValueError(f"unknown source {name!r}")
