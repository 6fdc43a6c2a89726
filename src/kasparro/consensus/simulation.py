"""Six sources report one asset universe, and one source at a time lies: the proof that the
reference price stays within 0.5% of the truth and names the liar with the right reason.

The universe is seeded. Each asset's true price moves every cycle (10 minutes) by 0.3% to 1%
up or down; every source observes it with 5 bps of noise, a few seconds to a minute and a half
late, with its own share of the asset's volume (one exchange reports no volume for every fifth
asset). In a scenario one source lies about every asset in the last cycles:

- `stale`: its observations stopped an hour before the others' last ones;
- `ten_percent_off`: its last price is 10% above the truth;
- `decimal_1000x`: its last price and volume are 1000x (a decimal error; the volume makes it
  the heaviest constituent by far, so the weight cap is tested too);
- `frozen`: its last four prices are one value, with fresh timestamps, while the market moves;
- `wrong_mapping`: its last price is another coin's that shares the ticker (priced 2x to 1000x
  apart: a namesake within the outlier band cannot be told apart by price, and moves the
  reference by less than the band, as tests/consensus/test_method.py shows).

Used by tests/consensus/test_lying_sources.py and bench/consensus.py.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kasparro.consensus.method import Parameters, Quote, Reference, reference_price

SOURCES = ("coingecko", "coinpaprika", "coinmarketcap", "coincap", "binance", "kraken")
CYCLE = timedelta(minutes=10)
CYCLES = 8
NOISE_BPS = 5
TOLERANCE = 0.005  # the reference price must stay within 0.5% of the truth
# Each scenario, and the reason the lying constituent must be excluded with.
EXPECTED_REASON: dict[str, str | None] = {
    "honest": None,
    "stale": "stale",
    "ten_percent_off": "outlier",
    "decimal_1000x": "outlier",
    "frozen": "frozen",
    "wrong_mapping": "outlier",
}
SCENARIOS = tuple(EXPECTED_REASON)
FROZEN_CYCLES = 4
STALE_FOR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SimulatedObservation:
    source: str
    asset_id: str  # the canonical asset the source's asset is linked to (the truth's id)
    symbol: str
    name: str
    price_usd: float
    market_cap_usd: float
    volume_24h_usd: float | None
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """One scenario with one liar, over every asset."""

    scenario: str
    liar: str | None
    assets: int
    published: int  # assets with a reference price
    max_error: float  # the largest |price / truth - 1|
    liar_named: int  # assets where the liar was excluded with the expected reason
    honest_excluded: int  # honest constituents excluded (any reason)
    mean_error: float  # for contrast: the largest error of the plain mean of the sources


class Universe:
    """Seeded true prices of `assets` coins over CYCLES cycles, and what six sources report."""

    def __init__(self, assets: int, *, seed: int = 14, end: datetime | None = None) -> None:
        rng = random.Random(seed)
        self.end = end or datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        self.asset_ids = [f"coin-{n:05d}" for n in range(assets)]
        self.truth: dict[str, list[float]] = {}
        self.namesake: dict[str, float] = {}
        self.volume: dict[str, float] = {}
        for asset_id in self.asset_ids:
            price = 10 ** rng.uniform(-4, 5)
            path = [price]
            for _ in range(CYCLES - 1):
                path.append(path[-1] * (1 + rng.choice((-1, 1)) * rng.uniform(0.003, 0.01)))
            self.truth[asset_id] = path
            self.namesake[asset_id] = path[-1] * 10 ** (
                rng.choice((-1, 1)) * rng.uniform(math.log10(2), 3)
            )
            self.volume[asset_id] = 10 ** rng.uniform(4, 9)
        self.lag = {s: timedelta(seconds=rng.uniform(5, 90)) for s in SOURCES}
        self.share = dict(zip(SOURCES, (1.0, 0.9, 1.1, 0.8, 0.25, 0.05), strict=True))
        self._seed = seed

    def cycle_time(self, cycle: int) -> datetime:
        return self.end - CYCLE * (CYCLES - 1 - cycle)

    def true_price(self, asset_id: str) -> float:
        """The truth at the end (the last cycle)."""
        return self.truth[asset_id][-1]

    def observations(self, scenario: str, liar: str | None) -> list[SimulatedObservation]:
        """Every cycle's observation of every asset by every source, the liar lying."""
        if scenario not in EXPECTED_REASON:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        rng = random.Random(f"{self._seed}:{scenario}:{liar}")
        found: list[SimulatedObservation] = []
        for asset_id in self.asset_ids:
            for source in SOURCES:
                lying = source == liar and scenario != "honest"
                for cycle in range(CYCLES):
                    observed = self._observed(scenario, lying, source, asset_id, cycle, rng)
                    if observed is not None:
                        found.append(observed)
        return found

    def _observed(
        self,
        scenario: str,
        lying: bool,
        source: str,
        asset_id: str,
        cycle: int,
        rng: random.Random,
    ) -> SimulatedObservation | None:
        when = self.cycle_time(cycle) - self.lag[source]
        price = self.truth[asset_id][cycle] * math.exp(rng.gauss(0, NOISE_BPS / 10_000))
        volume: float | None = self.volume[asset_id] * self.share[source]
        if source == "kraken" and int(asset_id[-5:]) % 5 == 0:
            volume = None  # this exchange lists no volume for the pair
        last = cycle == CYCLES - 1
        if lying and scenario == "stale" and when > self.end - STALE_FOR:
            return None  # nothing from it in the last hour
        if lying and last and scenario == "ten_percent_off":
            price = self.truth[asset_id][cycle] * 1.10
        if lying and last and scenario == "decimal_1000x":
            price, volume = price * 1000, (volume or self.volume[asset_id]) * 1000
        if lying and last and scenario == "wrong_mapping":
            price = self.namesake[asset_id] * math.exp(rng.gauss(0, NOISE_BPS / 10_000))
        if lying and scenario == "frozen" and cycle >= CYCLES - FROZEN_CYCLES:
            price = self.truth[asset_id][CYCLES - FROZEN_CYCLES]
        name = f"Coin {asset_id[-5:]}"
        return SimulatedObservation(
            source=source,
            asset_id=asset_id,
            symbol=f"C{asset_id[-5:]}",
            name=name,
            price_usd=price,
            market_cap_usd=self.truth[asset_id][cycle] * 1e7,
            volume_24h_usd=volume,
            observed_at=when,
        )


def quotes(
    observations: Sequence[SimulatedObservation], lookback: timedelta
) -> dict[str, list[Quote]]:
    """Per asset, each source's latest observation with its prices within `lookback` before
    the asset's newest observation: what the store reads from asset_sources and history."""
    by_key: dict[tuple[str, str], list[SimulatedObservation]] = defaultdict(list)
    for o in observations:
        by_key[(o.asset_id, o.source)].append(o)
    newest: dict[str, datetime] = {}
    for (asset_id, _), seen in by_key.items():
        when = max(o.observed_at for o in seen)
        newest[asset_id] = max(newest.get(asset_id, when), when)
    result: dict[str, list[Quote]] = defaultdict(list)
    for (asset_id, source), seen in sorted(by_key.items()):
        seen.sort(key=lambda o: o.observed_at)
        latest = seen[-1]
        since = newest[asset_id] - lookback
        result[asset_id].append(
            Quote(
                source=source,
                source_asset_id=f"{source}:{asset_id}",
                price_usd=latest.price_usd,
                volume_usd=latest.volume_24h_usd,
                observed_at=latest.observed_at,
                recent=[(o.observed_at, o.price_usd) for o in seen if o.observed_at >= since],
            )
        )
    return result


def judge(
    universe: Universe, scenario: str, liar: str | None, references: dict[str, Reference]
) -> Outcome:
    """How the references of one scenario fared against the truth."""
    expected = EXPECTED_REASON[scenario]
    max_error, published, named, honest_out, mean_error = 0.0, 0, 0, 0, 0.0
    for asset_id in universe.asset_ids:
        ref = references[asset_id]
        mean = sum(c.price_usd for c in ref.constituents) / len(ref.constituents)
        mean_error = max(mean_error, abs(mean / universe.true_price(asset_id) - 1))
        if ref.price_usd is not None:
            published += 1
            max_error = max(max_error, abs(ref.price_usd / universe.true_price(asset_id) - 1))
        else:
            max_error = math.inf  # no price where one was due counts as a failure
        for c in ref.constituents:
            if c.source == liar and expected is not None:
                named += c.reason is not None and c.reason.value == expected
            elif not c.used:
                honest_out += 1
    return Outcome(
        scenario, liar, len(universe.asset_ids), published, max_error, named, honest_out, mean_error
    )


def run_scenario(
    universe: Universe, scenario: str, liar: str | None, params: Parameters
) -> Outcome:
    """The scenario through the pure method (the store does the same over a database)."""
    by_asset = quotes(universe.observations(scenario, liar), params.frozen_lookback)
    now = universe.end + timedelta(minutes=1)
    references = {a: reference_price(qs, params, now) for a, qs in by_asset.items()}
    return judge(universe, scenario, liar, references)


def scenario_table(universe: Universe, params: Parameters) -> list[Outcome]:
    """Every scenario with every source as the liar in turn (the honest one once)."""
    outcomes = [run_scenario(universe, "honest", None, params)]
    for scenario in SCENARIOS[1:]:
        outcomes.extend(run_scenario(universe, scenario, liar, params) for liar in SOURCES)
    return outcomes
