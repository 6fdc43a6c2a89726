"""Plain data the resolver works on: filled from the database by the loader, from files by evals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceAsset:
    """What the resolver knows of one source's asset (a new record, or a member already linked)."""

    source: str
    source_asset_id: str
    symbol: str | None  # upper case; None for a coin its vendor lists without a ticker
    name: str
    price_usd: float | None = None
    market_cap_usd: float | None = None
    # When its price was quoted: prices quoted far apart in time are weaker evidence.
    observed_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.source_asset_id)


@dataclass(frozen=True, slots=True)
class CanonicalAsset:
    """An existing canonical asset and the source assets already linked to it."""

    asset_id: str
    symbol: str | None
    name: str
    members: tuple[SourceAsset, ...] = ()

    def has_source(self, source: str) -> bool:
        return any(m.source == source for m in self.members)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the resolver needs loaded before it can decide: the assets with a member that shares
    a blocking key with a new record (`kasparro.identity.evidence.blocking_keys`), and the
    assets holding a crosswalk partner."""

    ticker_keys: frozenset[str]  # matched with members' ticker keys
    text_keys: frozenset[str]  # name keys and id stems, matched with members' name keys and stems
    member_keys: frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one new source asset goes.

    `asset_id` None means: create a new canonical asset for it. `method` is one of
    "crosswalk", "id", "score" (matched an existing asset) or "new", "ambiguous" (a new asset).
    An ambiguous decision carries the candidates it refused to choose between, for review.
    """

    record: SourceAsset
    asset_id: str | None
    method: str
    score: float
    reason: str = ""
    candidates: tuple[dict[str, Any], ...] = field(default_factory=tuple)
