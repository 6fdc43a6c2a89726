"""The consensus method on plain data: each rule on a small case, then properties over many."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasparro.consensus.method import (
    MAX_WEIGHT_SHARE,
    Parameters,
    Quote,
    Reason,
    Reference,
    Status,
    capped_weights,
    reference_price,
    weighted_median,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PARAMS = Parameters()


def quote(
    source: str,
    price: float,
    *,
    volume: float | None = 1e6,
    age: float = 0,
    recent: Sequence[tuple[float, float]] = (),
) -> Quote:
    """A quote observed `age` seconds before NOW; `recent` as (seconds before NOW, price)."""
    return Quote(
        source=source,
        source_asset_id=f"{source}-coin",
        price_usd=price,
        volume_usd=volume,
        observed_at=NOW - timedelta(seconds=age),
        recent=[(NOW - timedelta(seconds=a), p) for a, p in recent],
    )


def reasons(ref: Reference) -> dict[str, str | None]:
    return {c.source: (c.reason.value if c.reason else None) for c in ref.constituents}


def test_agreeing_sources_are_all_used_and_weighted_by_capped_volume() -> None:
    quotes = [quote(f"s{i}", 100 + i * 0.01, volume=10 ** (i + 3)) for i in range(6)]
    ref = reference_price(quotes, PARAMS, NOW)
    assert ref.status is Status.OK
    assert ref.sources_used == ref.sources_total == 6
    assert not ref.single_source
    weights = [c.weight for c in ref.constituents]
    assert all(w is not None for w in weights)
    assert math.isclose(sum(w for w in weights if w is not None), 1)
    assert max(w for w in weights if w is not None) == pytest.approx(MAX_WEIGHT_SHARE)
    # s5 has by far the largest volume, but is capped: the median is not simply its price.
    assert ref.price_usd == 100.04
    assert ref.dispersion_bps is not None and 0 < ref.dispersion_bps < 5


def test_one_source_is_marked_single_source_without_dispersion() -> None:
    ref = reference_price([quote("only", 42.0)], PARAMS, NOW)
    assert (ref.status, ref.price_usd, ref.dispersion_bps, ref.single_source) == (
        Status.OK,
        42.0,
        None,
        True,
    )


def test_stale_sources_are_excluded_and_as_of_is_the_newest_observation() -> None:
    ref = reference_price(
        [quote("a", 100, age=60), quote("b", 100.1, age=120), quote("old", 90, age=3600)],
        PARAMS,
        NOW,
    )
    assert ref.as_of == NOW - timedelta(seconds=60)
    assert reasons(ref) == {"a": None, "b": None, "old": "stale"}
    stale = next(c for c in ref.constituents if c.source == "old")
    assert stale.detail is not None and "3,540 s" in stale.detail and "900 s" in stale.detail


def test_as_of_is_never_later_than_now() -> None:
    ref = reference_price([quote("ahead", 100, age=-120), quote("b", 100)], PARAMS, NOW)
    assert ref.as_of == NOW


def test_outliers_are_excluded_and_a_decimal_shift_is_pointed_out() -> None:
    quotes = [quote(s, p) for s, p in (("a", 100), ("b", 100.05), ("c", 99.95), ("d", 100.02))]
    ref = reference_price([*quotes, quote("shifted", 100_000.0, volume=1e15)], PARAMS, NOW)
    assert reasons(ref)["shifted"] == "outlier"
    shifted = next(c for c in ref.constituents if c.source == "shifted")
    assert shifted.detail is not None and "decimal shift" in shifted.detail
    assert ref.price_usd is not None and 99.95 <= ref.price_usd <= 100.05


def test_ten_percent_off_is_an_outlier_but_not_a_decimal_shift() -> None:
    quotes = [quote(s, 100 + n * 0.03) for n, s in enumerate("abcde")]
    ref = reference_price([*quotes, quote("off", 110.0)], PARAMS, NOW)
    off = next(c for c in ref.constituents if c.source == "off")
    assert off.reason is Reason.OUTLIER
    assert off.detail is not None and "decimal" not in off.detail and "+9.92%" in off.detail


def test_the_band_never_narrows_below_the_floor() -> None:
    # Identical prices make the MAD zero: a source 0.5% away is within the 1% floor.
    quotes = [quote(s, 100.0) for s in "abcd"]
    ref = reference_price([*quotes, quote("near", 100.5)], PARAMS, NOW)
    assert reasons(ref)["near"] is None


def test_frozen_value_while_the_others_move_is_excluded() -> None:
    moving = [quote(s, 103.0, recent=[(600, 102.0), (1200, 101.0), (1800, 100.0)]) for s in "abc"]
    frozen = quote("stuck", 101.0, recent=[(600, 101.0), (1200, 101.0), (1800, 101.0)])
    ref = reference_price([*moving, frozen], PARAMS, NOW)
    assert reasons(ref) == {"a": None, "b": None, "c": None, "stuck": "frozen"}
    stuck = next(c for c in ref.constituents if c.source == "stuck")
    assert stuck.detail is not None and "3 of 3 other sources moved" in stuck.detail


def test_a_steady_price_is_not_frozen_when_the_market_is_steady_too() -> None:
    steady = [(600, 1.0), (1200, 1.0), (1800, 1.0)]
    quotes = [quote(s, 1.0, recent=steady) for s in "abc"]
    quotes.append(quote("d", 1.0002, recent=[(600, 1.0001), (1200, 1.0)]))
    ref = reference_price(quotes, PARAMS, NOW)
    assert ref.sources_used == 4


def test_frozen_needs_enough_observations_within_the_lookback() -> None:
    # Two equal prices are not three; and one far back (beyond N x freshness) does not count.
    moving = [quote(s, 103.0, recent=[(600, 100.0), (1200, 99.0)]) for s in "abc"]
    beyond = PARAMS.frozen_lookback.seconds + 60
    few = quote("few", 103.0, recent=[(600, 103.0), (beyond, 103.0)])
    assert reasons(reference_price([*moving, few], PARAMS, NOW))["few"] is None
    enough = quote("enough", 103.0, recent=[(600, 103.0), (1200, 103.0)])
    assert reasons(reference_price([*moving, enough], PARAMS, NOW))["enough"] == "frozen"


def test_two_sources_far_apart_are_disputed_and_no_price_is_published() -> None:
    ref = reference_price([quote("a", 100.0), quote("b", 0.1)], PARAMS, NOW)
    assert (ref.status, ref.price_usd, ref.sources_used) == (Status.DISPUTED, None, 0)
    assert set(reasons(ref).values()) == {"disputed"}
    assert not ref.single_source


def test_two_close_sources_give_their_midpoint() -> None:
    ref = reference_price([quote("a", 100.0, volume=1), quote("b", 101.0, volume=1e9)], PARAMS, NOW)
    assert ref.price_usd == 100.5  # two constituents cannot be capped: equal weights


def test_a_split_without_majority_is_disputed() -> None:
    quotes = [quote(s, 100.0) for s in "abc"] + [quote(s, 200.0) for s in "xyz"]
    ref = reference_price(quotes, PARAMS, NOW)
    assert ref.status is Status.DISPUTED


def test_sources_without_volume_weigh_as_the_smallest_reported_volume() -> None:
    assert capped_weights([None, 1.0, 1.0, 2.0, 0.5], 0.4) == pytest.approx(
        [1 / 6, 1 / 6, 1 / 6, 2 / 6, 1 / 6]
    )
    assert capped_weights([None, None], 0.4) == [0.5, 0.5]
    assert capped_weights([1e12, 1.0, 1.0], 0.4) == pytest.approx([0.4, 0.3, 0.3])


def test_weighted_median_ties_take_the_midpoint() -> None:
    assert weighted_median([1.0, 3.0], [0.5, 0.5]) == 2.0
    assert weighted_median([1.0, 2.0, 3.0], [0.2, 0.3, 0.5]) == 2.5  # exactly half at 2.0
    assert weighted_median([1.0, 2.0, 3.0], [0.2, 0.35, 0.45]) == 2.0
    assert weighted_median([3.0, 1.0, 2.0], [0.1, 0.6, 0.3]) == 1.0


def test_no_quote_is_an_error() -> None:
    with pytest.raises(ValueError, match="no quote"):
        reference_price([], PARAMS, NOW)


# Properties ------------------------------------------------------------------------------------

prices = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)
volumes = st.one_of(st.none(), st.floats(min_value=0, max_value=1e12, allow_nan=False))


@st.composite
def honest_market(draw: st.DrawFn, minimum: int = 2) -> tuple[float, list[Quote]]:
    truth = draw(prices)
    count = draw(st.integers(min_value=minimum, max_value=8))
    quotes = [
        quote(
            f"h{n}",
            truth * (1 + draw(st.floats(min_value=-0.001, max_value=0.001))),
            volume=draw(volumes),
            age=draw(st.floats(min_value=0, max_value=600)),
        )
        for n in range(count)
    ]
    return truth, quotes


@settings(max_examples=300, deadline=None)
@given(market=honest_market(), liar_price=prices, liar_volume=volumes, order=st.randoms())
def test_a_single_liar_among_three_or_more_never_moves_the_price_beyond_tolerance(
    market: tuple[float, list[Quote]],
    liar_price: float,
    liar_volume: float | None,
    order: random.Random,
) -> None:
    truth, honest = market
    liar = quote("liar", liar_price, volume=liar_volume)
    quotes = [*honest, liar]
    order.shuffle(quotes)
    ref = reference_price(quotes, PARAMS, NOW)
    assert ref.status is Status.OK
    assert ref.price_usd is not None
    assert abs(ref.price_usd / truth - 1) <= 0.001 + 1e-12  # within the honest spread
    # The liar is excluded whenever it is beyond the floor band from every honest price.
    if all(abs(math.log(liar_price / q.price_usd)) > math.log(1.03) for q in honest):
        assert next(c for c in ref.constituents if c.source == "liar").reason is Reason.OUTLIER


@settings(max_examples=300, deadline=None)
@given(market=honest_market(minimum=1), order=st.randoms())
def test_the_price_is_order_independent_and_within_the_constituents_used(
    market: tuple[float, list[Quote]], order: random.Random
) -> None:
    _, quotes = market
    ref = reference_price(quotes, PARAMS, NOW)
    shuffled = list(quotes)
    order.shuffle(shuffled)
    assert reference_price(shuffled, PARAMS, NOW) == ref
    used = [c.price_usd for c in ref.constituents if c.used]
    assert ref.price_usd is not None and min(used) <= ref.price_usd <= max(used)
    weights = [c.weight for c in ref.constituents if c.used]
    assert math.isclose(sum(w for w in weights if w is not None), 1)
    if len(used) * MAX_WEIGHT_SHARE >= 1:
        assert max(w for w in weights if w is not None) <= MAX_WEIGHT_SHARE + 1e-12


@settings(max_examples=200, deadline=None)
@given(
    volumes=st.lists(volumes, min_size=1, max_size=12),
    cap=st.floats(min_value=0.05, max_value=1.0),
)
def test_capped_weights_sum_to_one_and_respect_the_cap_when_they_can(
    volumes: list[float | None], cap: float
) -> None:
    weights = capped_weights(volumes, cap)
    assert math.isclose(sum(weights), 1)
    assert all(w > 0 for w in weights)
    if len(volumes) * cap >= 1:
        assert max(weights) <= cap + 1e-12


@st.composite
def histories(draw: st.DrawFn) -> list[Quote]:
    """Sources whose recent prices are drawn from a few values, so many runs are flat."""
    values = st.sampled_from([99.0, 100.0, 100.5, 101.0])
    quotes = []
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        ages = sorted(draw(st.lists(st.integers(0, 3000), min_size=1, max_size=6, unique=True)))
        points = [(float(age), draw(values)) for age in ages]
        (latest_age, latest_price), *recent = points
        quotes.append(quote(f"s{n}", latest_price, age=latest_age, recent=recent))
    return quotes


@settings(max_examples=500, deadline=None)
@given(quotes=histories())
def test_some_constituent_always_survives_staleness_and_freezing(quotes: list[Quote]) -> None:
    ref = reference_price(quotes, PARAMS, NOW)  # raises if none were left to judge
    survivors = [c for c in ref.constituents if c.reason not in (Reason.STALE, Reason.FROZEN)]
    assert survivors
