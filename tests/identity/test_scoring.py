"""The evidence and its weights: each comparison's levels, and decisions they explain."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from kasparro.identity import evidence as ev
from kasparro.identity.crosswalk import Crosswalk
from kasparro.identity.model import CanonicalAsset, SourceAsset
from kasparro.identity.resolver import resolve
from kasparro.identity.scoring import ACCEPT_BITS, M_U, WEIGHTS, score_pair


def cg(sid: str, symbol: str | None, name: str, price: float, cap: float | None) -> SourceAsset:
    return SourceAsset("coingecko", sid, symbol, name, price, cap)


def cp(sid: str, symbol: str | None, name: str, price: float, cap: float | None) -> SourceAsset:
    return SourceAsset("coinpaprika", sid, symbol, name, price, cap)


def one(record: SourceAsset, *members: SourceAsset):  # type: ignore[no-untyped-def]
    assets = [CanonicalAsset(m.source_asset_id, m.symbol, m.name, (m,)) for m in members]
    (decision,) = resolve([record], assets, Crosswalk())
    return decision


def test_every_weight_is_a_log_likelihood_ratio_of_probabilities() -> None:
    for comparison, levels in M_U.items():
        for level, (m, u) in levels.items():
            assert 0 < m <= 1 and 0 < u <= 1, (comparison, level)
            assert WEIGHTS[comparison][level] == math.log2(m / u)
        if "missing" not in levels:  # the observed levels of a comparison cover every pair
            assert math.isclose(sum(m for m, _ in levels.values()), 1.0), comparison
            assert math.isclose(sum(u for _, u in levels.values()), 1.0), comparison


def test_tickers_without_dollar_and_chain_suffix() -> None:
    assert ev.ticker_key("$ACAT") == ev.ticker_key("acat") == "ACAT"
    assert ev.ticker_key("USDC.e") == "USDC"
    assert ev.ticker_key(None) == ""
    assert ev.compare_ticker(cg("a", "$ACAT", "x", 1, None), cp("b", "ACAT", "x", 1, None)) == (
        "same_without_affixes"
    )


def test_names_compared_without_generic_words() -> None:
    assert ev.compare_name("Ankr Network", "Ankr") == "same_core"
    assert ev.compare_name("Atari", "Atari Token") == "same_core"
    assert ev.compare_name("Spectra [OLD]", "Spectra") == "same_core"
    assert ev.compare_name("Aavegotchi FOMO", "FOMO") == "contained"
    assert ev.compare_name("Bitcoin", "Dogecoin") == "different"
    assert ev.variant_marks(cg("wrapped-solana", "SOL", "Wrapped SOL", 1, None)) == {"wrapped"}


def test_a_cap_apart_by_a_few_times_is_evidence_not_a_veto() -> None:
    record = cp("frax-frax-share", "FXS", "Frax Share", 3.21, 3.0e8)
    member = cg("frax-share", "FXS", "Frax Share", 3.20, 9.0e8)  # vendors count supply apart
    decision = one(record, member)
    assert decision.asset_id == "frax-share"


def test_a_different_ticker_is_found_by_name_and_linked_on_market_agreement() -> None:
    record = cp("fxs-frax-share", "FXS", "Frax Share", 3.21, 3.0e8)
    member = cg("frax-share", "FRAX", "Frax Share", 3.20, 3.1e8)
    assert one(record, member).asset_id == "frax-share"


def test_unpegged_prices_that_disagree_keep_look_alikes_apart() -> None:
    clone = cg("pepe-7", "PEPE", "Pepe", 0.0000123, 5.0e6)
    record = cp("pepe-pepe", "PEPE", "Pepe", 0.91, 5.1e6)
    decision = one(record, clone)
    assert decision.asset_id is None
    assert score_pair(record, clone).bits < 0


def test_a_peg_price_says_little_and_the_caps_tell_copies_apart() -> None:
    usdc = cg("usd-coin", "USDC", "USDC", 0.9998, 7.7e10)
    bridged = cp("usdc-usdc-bridged", "USDC", "USDC (Bridged)", 1.0001, 2.0e8)
    pair = score_pair(bridged, usdc)
    assert [e.comparison for e in pair.evidence if e.comparison.endswith("price")] == [
        "pegged_price"
    ]
    assert one(bridged, usdc).asset_id is None


def test_a_review_lists_every_evidence_and_its_weight() -> None:
    # Names and ids disagree, prices 15% apart: plausible, not sure enough to link.
    record = cp("ton-toncoin", "TON", "Toncoin", 2.0, 5.0e9)
    member = cg("the-open-network", "TON", "The Open Network", 2.3, 4.5e9)
    decision = one(record, member)
    assert (decision.asset_id, decision.method) == (None, "ambiguous")
    (candidate,) = decision.candidates
    assert candidate["asset_id"] == "the-open-network"
    assert candidate["bits"] < ACCEPT_BITS
    found = {e["evidence"]: (e["level"], e["weight"]) for e in candidate["evidence"]}
    assert found["price"][0] == "within_25pct" and found["name"][1] < 0
    assert set(found) == {"ticker", "name", "id", "variant", "price", "market_cap"}
    assert "bits" in decision.reason and "name different" in decision.reason


def test_a_coin_without_a_ticker_is_resolved_by_name_and_id() -> None:
    member = cg("arcium", None, "Arcium", 1.50, 1.5e7)
    record = cp("arcium-arcium", None, "Arcium", 1.51, 1.52e7)
    assert ev.compare_ticker(record, member) == "missing"
    assert one(record, member).asset_id == "arcium"
    assert one(cp("xyz-other", None, "Other", 1.51, 1.52e7), member).asset_id is None


def test_prices_quoted_months_apart_do_not_outweigh_identical_identity() -> None:
    # One coin, quoted by two snapshots months apart: 66% apart in price, caps 1.6x apart.
    now = datetime(2026, 5, 13, tzinfo=UTC)
    record = replace(cp("zec-zcash", "ZEC", "Zcash", 551.8, 9.0e9), observed_at=now)
    member = cg("zcash", "ZEC", "Zcash", 332.5, 5.6e9)
    same_moment = one(record, replace(member, observed_at=now))
    assert same_moment.asset_id is None  # at one moment that gap says: another coin
    months_before = replace(member, observed_at=now - timedelta(days=13))
    assert one(record, months_before).asset_id == "zcash"
    levels = {e.comparison: e.level for e in score_pair(record, months_before).evidence}
    assert levels["stale_price"] == "within_2x"
    # A clone's price several-fold off still counts against, stale or not.
    clone = replace(cg("zcash-2", "ZEC", "Zcash Classic", 0.0042, 1.0e6), observed_at=now)
    assert score_pair(record, replace(clone, observed_at=now - timedelta(days=90))).bits < 0
