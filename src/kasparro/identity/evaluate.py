"""Precision and recall of the resolver on a labeled set built from real vendor responses.

The set (in `eval/`, provenance in its README): CoinGecko `/coins/markets` items from three real
snapshots and CoinPaprika `/tickers` items from a real response, with every cross-vendor pair that
shares a ticker labeled `same` or `different`. The resolver sees the sources one after the other,
as the ETL does, in both orders; a predicted pair is two items that end up in one asset.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kasparro.identity.crosswalk import Crosswalk
from kasparro.identity.model import CanonicalAsset, SourceAsset
from kasparro.identity.resolver import asset_id_base, resolve
from kasparro.models import RawRecord, UnifiedRecord
from kasparro.sources import coingecko, coinpaprika

EVAL_DIR = Path(__file__).resolve().parent / "eval"

Pair = tuple[str, str]  # (coinpaprika id, coingecko id)


@dataclass(frozen=True, slots=True)
class Score:
    order: str
    true_pairs: int
    predicted: int
    correct: int
    decoys_merged: int
    ambiguous: int
    wrong: tuple[Pair, ...] = field(default_factory=tuple)
    missed: tuple[Pair, ...] = field(default_factory=tuple)

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.true_pairs if self.true_pairs else 1.0


def load_items(directory: Path = EVAL_DIR) -> dict[str, list[SourceAsset]]:
    sets = {
        "coingecko": (coingecko.normalize, "coingecko_markets.json"),
        "coinpaprika": (coinpaprika.normalize, "coinpaprika_tickers.json"),
    }
    items: dict[str, list[SourceAsset]] = {}
    for source, (normalize, filename) in sets.items():
        payloads: list[dict[str, Any]] = json.loads((directory / filename).read_text())
        records = [normalize(RawRecord.of(source, p)) for p in payloads]
        items[source] = [_view(r) for r in records if isinstance(r, UnifiedRecord)]
    return items


def load_labels(directory: Path = EVAL_DIR) -> dict[Pair, bool]:
    with (directory / "labels.csv").open(newline="") as handle:
        return {
            (row["coinpaprika_id"], row["coingecko_id"]): row["relation"] == "same"
            for row in csv.DictReader(handle)
        }


def simulate(
    batches: Sequence[Sequence[SourceAsset]], crosswalk: Crosswalk
) -> tuple[dict[tuple[str, str], str], int]:
    """Resolve source after source as the loader would: source key -> asset id, and how many
    decisions were left ambiguous (reported for review)."""
    ambiguous = 0
    assets: dict[str, CanonicalAsset] = {}
    owner: dict[tuple[str, str], str] = {}
    for batch in batches:
        # Every asset: the resolver's own index keeps the ones sharing a blocking key, as the
        # database lookup does.
        for decision in resolve(batch, list(assets.values()), crosswalk):
            record = decision.record
            ambiguous += decision.method == "ambiguous"
            asset_id = decision.asset_id
            if asset_id is None:
                asset_id = base = asset_id_base(record.symbol, record.name)
                n = 1
                while asset_id in assets:
                    n += 1
                    asset_id = f"{base}-{n}"
                assets[asset_id] = CanonicalAsset(asset_id, record.symbol, record.name, ())
            current = assets[asset_id]
            assets[asset_id] = CanonicalAsset(
                asset_id, current.symbol, current.name, (*current.members, record)
            )
            owner[record.key] = asset_id
    return owner, ambiguous


def evaluate(crosswalk: Crosswalk, directory: Path = EVAL_DIR) -> list[Score]:
    items = load_items(directory)
    labels = load_labels(directory)
    true_pairs = {pair for pair, same in labels.items() if same}
    scores = []
    for order in (("coingecko", "coinpaprika"), ("coinpaprika", "coingecko")):
        owner, ambiguous = simulate([items[s] for s in order], crosswalk)
        by_asset: dict[str, dict[str, str]] = {}
        for (source, source_asset_id), asset_id in owner.items():
            by_asset.setdefault(asset_id, {})[source] = source_asset_id
        predicted = {
            (members["coinpaprika"], members["coingecko"])
            for members in by_asset.values()
            if {"coinpaprika", "coingecko"} <= members.keys()
        }
        wrong = sorted(predicted - true_pairs)
        scores.append(
            Score(
                order=" then ".join(order),
                true_pairs=len(true_pairs),
                predicted=len(predicted),
                correct=len(predicted & true_pairs),
                decoys_merged=sum(1 for p in wrong if labels.get(p) is False),
                ambiguous=ambiguous,
                wrong=tuple(wrong),
                missed=tuple(sorted(true_pairs - predicted)),
            )
        )
    return scores


def _view(record: UnifiedRecord) -> SourceAsset:
    return SourceAsset(
        source=record.source,
        source_asset_id=record.source_asset_id,
        symbol=record.symbol,
        name=record.name,
        price_usd=record.price_usd,
        market_cap_usd=record.market_cap_usd,
        observed_at=record.observed_at,
    )
