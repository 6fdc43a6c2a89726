"""The consensus reference price of one asset from its sources' observations (pure).

The method, step by step, with its formulae, is stated in docs/methodology.md; each step here
names the section it implements. Prices are compared as logarithms: a decimal error or a wrong
coin is a ratio, not a difference.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

# 1.4826 x MAD estimates the standard deviation of normally distributed values.
MAD_TO_SIGMA = 1.4826
# A constituent never carries more than this share of the weight: below one half, so no single
# source is ever the weighted median against all the others (docs/methodology.md, step 5).
MAX_WEIGHT_SHARE = 0.4
# The others "moved" when their prices ranged over at least this much while a source's did not.
FROZEN_MIN_MOVE = 0.001
BPS = 10_000
# A 24 h volume under a dollar is no volume.
MIN_VOLUME_USD = 1.0


class Reason(StrEnum):
    """Why a constituent was left out."""

    STALE = "stale"
    FROZEN = "frozen"
    OUTLIER = "outlier"
    DISPUTED = "disputed"  # passed every test, but the constituents that did disagree


class Status(StrEnum):
    OK = "ok"  # a value is published
    DISPUTED = "disputed"  # no majority agrees, or those that remain are too dispersed


@dataclass(frozen=True, slots=True)
class Parameters:
    """The method's settings (CONSENSUS_* in the configuration)."""

    freshness: timedelta = timedelta(seconds=900)
    outlier_k: float = 3.5
    outlier_floor_bps: float = 100.0
    max_dispersion_bps: float = 500.0
    frozen_observations: int = 3

    @property
    def frozen_lookback(self) -> timedelta:
        """How far back a source's observations are read to tell whether it is frozen."""
        return self.freshness * self.frozen_observations


@dataclass(frozen=True, slots=True)
class Quote:
    """One source's latest observation of the asset, with its recent prices."""

    source: str
    source_asset_id: str
    price_usd: float
    volume_usd: float | None
    observed_at: datetime
    # (observed_at, price) of this source for this asset within the frozen lookback, any order;
    # the latest observation may be among them or not.
    recent: Sequence[tuple[datetime, float]] = ()


@dataclass(frozen=True, slots=True)
class Constituent:
    source: str
    source_asset_id: str
    price_usd: float
    volume_usd: float | None
    observed_at: datetime
    weight: float | None = None  # share of the weight, when used
    reason: Reason | None = None  # when excluded
    detail: str | None = None

    @property
    def used(self) -> bool:
        return self.reason is None


@dataclass(frozen=True, slots=True)
class Reference:
    as_of: datetime
    status: Status
    price_usd: float | None
    dispersion_bps: float | None
    constituents: tuple[Constituent, ...] = field(default=())

    @property
    def sources_used(self) -> int:
        return sum(1 for c in self.constituents if c.used)

    @property
    def sources_total(self) -> int:
        return len(self.constituents)

    @property
    def single_source(self) -> bool:
        return self.status is Status.OK and self.sources_used == 1


def reference_price(quotes: Sequence[Quote], params: Parameters, now: datetime) -> Reference:
    """The reference price of one asset from each source's latest quote (one per source).

    `as_of` is the newest observation, or `now` if that is later than now. Raises ValueError
    with no quote: there is nothing to be as of.
    """
    if not quotes:
        raise ValueError("no quote to compute a reference price from")
    ordered = sorted(quotes, key=lambda q: (q.source, q.source_asset_id))
    as_of = min(now, max(q.observed_at for q in ordered))
    excluded: dict[int, tuple[Reason, str]] = {}

    # Step 1: freshness.
    for i, q in enumerate(ordered):
        age = (as_of - q.observed_at).total_seconds()
        if age > params.freshness.total_seconds():
            excluded[i] = (
                Reason.STALE,
                f"observed {age:,.0f} s before the as-of time; the window is "
                f"{params.freshness.total_seconds():,.0f} s",
            )
    # Step 2: frozen values, judged against the fresh others.
    fresh = [i for i in range(len(ordered)) if i not in excluded]
    for i in fresh:
        frozen = _frozen(ordered[i], [ordered[j] for j in fresh if j != i], as_of, params)
        if frozen is not None:
            excluded[i] = (Reason.FROZEN, frozen)
    # Step 3: outliers, by the median absolute deviation of the log prices. There is always a
    # candidate: the newest quote is never stale, and the frozen quote whose flat run began
    # last saw others move since then, which no frozen quote did (docs/methodology.md).
    candidates = [i for i in range(len(ordered)) if i not in excluded]
    logs = {i: math.log(ordered[i].price_usd) for i in candidates}
    centre = statistics.median(logs.values())
    mad = statistics.median(abs(x - centre) for x in logs.values())
    band = max(params.outlier_k * MAD_TO_SIGMA * mad, math.log1p(params.outlier_floor_bps / BPS))
    for i in candidates:
        deviation = logs[i] - centre
        if abs(deviation) > band:
            excluded[i] = (Reason.OUTLIER, _outlier_detail(deviation, centre, band))
    kept = [i for i in candidates if i not in excluded]
    # Step 4: a strict majority of the candidates must remain.
    if 2 * len(kept) <= len(candidates):
        why = f"only {len(kept)} of {len(candidates)} fresh constituents agree: no majority"
        return _disputed(as_of, ordered, excluded, kept, why)
    # Step 5: the volume-weighted median of those that remain.
    weights = capped_weights([ordered[i].volume_usd for i in kept], MAX_WEIGHT_SHARE)
    price = weighted_median([ordered[i].price_usd for i in kept], weights)
    # Step 6: dispersion, and the ceiling on it.
    dispersion = None
    if len(kept) > 1:
        dispersion = (
            MAD_TO_SIGMA * statistics.median(abs(logs[i] - math.log(price)) for i in kept) * BPS
        )
        if dispersion > params.max_dispersion_bps:
            why = (
                f"the constituents left disagree: dispersion {dispersion:,.0f} bps > "
                f"{params.max_dispersion_bps:,.0f} bps"
            )
            return _disputed(as_of, ordered, excluded, kept, why)
    shares = dict(zip(kept, weights, strict=True))
    return _reference(as_of, Status.OK, price, dispersion, ordered, excluded, shares)


def _frozen(
    quote: Quote, others: Sequence[Quote], as_of: datetime, params: Parameters
) -> str | None:
    """Why `quote` is frozen, or None: its last N prices within the lookback are one value
    while most of the others moved."""
    if len(quote.recent) + 1 < params.frozen_observations:
        return None  # too few observations to tell (the common case: cheap)
    series = _series(quote, as_of - params.frozen_lookback)
    last = series[-params.frozen_observations :]
    if len(last) < params.frozen_observations or any(p != quote.price_usd for _, p in last):
        return None
    start = last[0][0]
    ranges = []
    for other in others:
        prices = [p for _, p in _series(other, start)]
        if len(prices) >= 2:
            ranges.append(max(prices) / min(prices) - 1)
    moved = sum(1 for r in ranges if r >= FROZEN_MIN_MOVE)
    if not ranges or 2 * moved <= len(ranges):
        return None  # the market did not move either: a steady price is no fault
    return (
        f"the same price {quote.price_usd:.10g} in its last {len(last)} observations (since "
        f"{start.isoformat()}), while {moved} of {len(ranges)} other sources moved by "
        f"{FROZEN_MIN_MOVE:.1%} or more"
    )


def _series(quote: Quote, since: datetime) -> list[tuple[datetime, float]]:
    """The quote's observations from `since` on, oldest first, its latest included, one per
    time (the latest wins over a recent entry at the same time)."""
    points = {t: p for t, p in quote.recent if since <= t <= quote.observed_at}
    points[quote.observed_at] = quote.price_usd
    return sorted(points.items())


def _outlier_detail(deviation: float, centre: float, band: float) -> str:
    ratio = math.exp(deviation)
    text = (
        f"{ratio:.6g}x the median {math.exp(centre):.10g} ({ratio - 1:+.2%}); "
        f"the band is ±{math.expm1(band):.2%}"
    )
    decades = math.log10(ratio)
    if abs(decades) >= 0.99 and abs(decades - round(decades)) < 0.005:
        text += f"; a decimal shift? (10^{round(decades):+d})"
    return text


def capped_weights(volumes: Sequence[float | None], cap: float) -> list[float]:
    """Weight shares from 24 h volumes, none above `cap` (the excess goes to the others in
    proportion to their volume). A constituent without a volume (none, or under MIN_VOLUME_USD)
    weighs as the smallest reported one; with no volume at all, or too few constituents for the
    cap (n x cap < 1), the weights are equal."""
    n = len(volumes)
    reported = [v for v in volumes if v is not None and v >= MIN_VOLUME_USD]
    if not reported or n * cap < 1:
        return [1 / n] * n
    # Scaled by the largest, so sums and ratios stay far from overflow and denormals.
    top, floor = max(reported), min(reported)
    raw = [(v if v is not None and v >= MIN_VOLUME_USD else floor) / top for v in volumes]
    shares = [0.0] * n
    fixed: set[int] = set()
    while True:
        free = [i for i in range(n) if i not in fixed]
        left = 1 - cap * len(fixed)
        total = sum(raw[i] for i in free)
        for i in free:
            shares[i] = left * raw[i] / total
        # A share over the cap by rounding alone is not over it.
        over = [i for i in free if shares[i] > cap * (1 + 1e-9)]
        if not over:
            return shares
        for i in over:
            shares[i] = cap
            fixed.add(i)


def weighted_median(prices: Sequence[float], weights: Sequence[float]) -> float:
    """The lowest price at which the cumulative weight (prices ascending) reaches half the
    total; where it reaches exactly half, the mean of that price and the next one."""
    pairs = sorted(zip(prices, weights, strict=True))
    half = sum(weights) / 2
    cumulative = 0.0
    for index, (price, weight) in enumerate(pairs):
        cumulative += weight
        if math.isclose(cumulative, half, rel_tol=1e-9, abs_tol=1e-12):
            return (price + pairs[index + 1][0]) / 2 if index + 1 < len(pairs) else price
        if cumulative > half:
            return price
    return pairs[-1][0]  # pragma: no cover - the weights sum to the total


def _disputed(
    as_of: datetime,
    ordered: Sequence[Quote],
    excluded: dict[int, tuple[Reason, str]],
    kept: Sequence[int],
    why: str,
) -> Reference:
    for i in kept:
        excluded[i] = (Reason.DISPUTED, why)
    return _reference(as_of, Status.DISPUTED, None, None, ordered, excluded, {})


def _reference(
    as_of: datetime,
    status: Status,
    price: float | None,
    dispersion: float | None,
    ordered: Sequence[Quote],
    excluded: dict[int, tuple[Reason, str]],
    shares: dict[int, float],
) -> Reference:
    constituents = tuple(
        Constituent(
            source=q.source,
            source_asset_id=q.source_asset_id,
            price_usd=q.price_usd,
            volume_usd=q.volume_usd,
            observed_at=q.observed_at,
            weight=shares.get(i),
            reason=excluded[i][0] if i in excluded else None,
            detail=excluded[i][1] if i in excluded else None,
        )
        for i, q in enumerate(ordered)
    )
    return Reference(as_of, status, price, dispersion, constituents)
