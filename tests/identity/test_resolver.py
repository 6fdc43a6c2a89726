"""The resolver on its own: pure functions, no database."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kasparro.identity.crosswalk import Crosswalk, load_crosswalk
from kasparro.identity.evaluate import evaluate
from kasparro.identity.evidence import id_stem
from kasparro.identity.model import CanonicalAsset, SourceAsset
from kasparro.identity.resolver import asset_id_base, resolve


def sa(source: str, sid: str, symbol: str, name: str, price: float, cap: float | None):
    return SourceAsset(source, sid, symbol, name, price, cap)


BTC_CG = sa("coingecko", "bitcoin", "BTC", "Bitcoin", 80_100, 1.60e12)
SOL_CG = sa("coingecko", "solana", "SOL", "Solana", 94.4, 54.6e9)
WSOL_CG = sa("coingecko", "wrapped-solana", "SOL", "Wrapped SOL", 94.3, 1.63e9)
USDC_CG = sa("coingecko", "usd-coin", "USDC", "USDC", 0.9997, 77.2e9)
BUSDC_CG = sa(
    "coingecko",
    "binance-bridged-usdc-bnb-smart-chain",
    "USDC",
    "Binance Bridged USDC",
    0.9998,
    1.3e9,
)


def asset(asset_id: str, *members: SourceAsset) -> CanonicalAsset:
    return CanonicalAsset(asset_id, members[0].symbol, members[0].name, members)


EXISTING = [
    asset("bitcoin", BTC_CG),
    asset("solana", SOL_CG),
    asset("wrapped-sol", WSOL_CG),
    asset("usdc", USDC_CG),
    asset("binance-bridged-usdc", BUSDC_CG),
]


def decide(record: SourceAsset, crosswalk: Crosswalk | None = None):
    (decision,) = resolve([record], EXISTING, crosswalk or Crosswalk())
    return decision


def test_one_bitcoin_across_vendors_and_csv() -> None:
    paprika = sa("coinpaprika", "btc-bitcoin", "BTC", "Bitcoin", 80_586, 1.61e12)
    csv_row = sa("csv", "btc-bitcoin", "BTC", "Bitcoin", 81_000, None)
    assert decide(paprika).asset_id == "bitcoin"
    assert decide(paprika).method == "id"
    assert decide(csv_row).asset_id == "bitcoin"


def test_coins_sharing_a_ticker_never_merge() -> None:
    sol = decide(sa("coinpaprika", "sol-solana", "SOL", "Solana", 94.4, 54.5e9))
    assert sol.asset_id == "solana"
    # The wrapped token has the same price and ticker but a market cap 30x smaller.
    wsol = decide(sa("csv", "sol-wrapped-sol", "SOL", "Wrapped SOL", 94.4, 1.6e9))
    assert wsol.asset_id == "wrapped-sol"
    usdc = decide(sa("coinpaprika", "usdc-usd-coin", "USDC", "USD Coin", 0.9996, 77.0e9))
    assert usdc.asset_id == "usdc"
    bridged = sa("coinpaprika", "usdc-bridged-usdc-polygon", "USDC", "Bridged USDC", 1.0, 0.2e9)
    assert decide(bridged).asset_id is None


def test_a_ticker_alone_is_not_enough() -> None:
    # Same ticker, unrelated name, no market data: a new asset, not a guess.
    other = sa("coinpaprika", "sol-solar-network", "SOL", "Solar Network", 0.01, None)
    decision = decide(other)
    assert (decision.asset_id, decision.method) == (None, "new")


def test_a_close_call_is_reported_not_guessed() -> None:
    twins = [
        asset("weth", sa("coingecko", "weth", "WETH", "WETH", 2300, 8.0e9)),
        asset("weth-2", sa("coingecko", "weth-token", "WETH", "WETH", 2300, 7.9e9)),
    ]
    record = sa("coinpaprika", "weth-weth", "WETH", "WETH", 2301, 8.2e9)
    (decision,) = resolve([record], twins, Crosswalk())
    assert (decision.asset_id, decision.method) == (None, "ambiguous")
    assert {c["asset_id"] for c in decision.candidates} == {"weth", "weth-2"}
    assert "about equally" in decision.reason


def test_the_crosswalk_links_and_separates() -> None:
    steth = sa(
        "coinpaprika",
        "wsteth-wrapped-liquid-staked-ether-20",
        "WSTETH",
        "Wrapped LSE 2.0",
        2840,
        10.1e9,
    )
    wrapped = asset(
        "wrapped-steth", sa("coingecko", "wrapped-steth", "WSTETH", "Wrapped stETH", 2840, 12.3e9)
    )
    assert resolve([steth], [wrapped], Crosswalk())[0].asset_id is None
    linked = resolve([steth], [wrapped], load_crosswalk())[0]
    assert (linked.asset_id, linked.method) == ("wrapped-steth", "crosswalk")

    # A crosswalk group elsewhere means "not this one", however good the score.
    apart = Crosswalk.of([("a", "coingecko", "bitcoin"), ("b", "coinpaprika", "btc-bitcoin")])
    paprika = sa("coinpaprika", "btc-bitcoin", "BTC", "Bitcoin", 80_586, 1.61e12)
    assert decide(paprika, apart).asset_id is None


def test_two_records_of_one_batch_never_take_the_same_asset() -> None:
    one = sa("csv", "sol-solana", "SOL", "Solana", 94.4, 54.6e9)
    two = sa("csv", "sol-solana-token", "SOL", "Solana Token", 94.4, 54.0e9)
    decisions = resolve([one, two], EXISTING, Crosswalk())
    assert [d.asset_id for d in decisions].count("solana") == 1
    assert decisions[0].asset_id == "solana"  # the better match wins
    assert decisions[1].method == "ambiguous"


def test_an_asset_never_holds_two_assets_of_one_source() -> None:
    again = sa("coingecko", "bitcoin-2", "BTC", "Bitcoin", 80_100, 1.6e12)
    assert decide(again).asset_id is None


def test_ids_reduce_to_a_common_stem() -> None:
    bnb_cp = id_stem(sa("coinpaprika", "bnb-binance-coin", "BNB", "BNB", 1, None))
    bnb_cg = id_stem(sa("coingecko", "binancecoin", "BNB", "BNB", 1, None))
    assert bnb_cp.agrees(bnb_cg) and not bnb_cg.numbered
    avalanche = id_stem(sa("coingecko", "avalanche-2", "AVAX", "Avalanche", 1, None))
    assert avalanche.numbered and avalanche.whole == {"avalanche"}
    # The rule is generic, whatever the source: an id that starts with the record's own ticker
    # (optionally numbered) names the coin by the rest.
    clone = id_stem(sa("any_source", "neiro13-neiro", "NEIRO", "Neiro", 1, None))
    assert clone.numbered and clone.after_ticker == {"neiro"}
    # A part after a ticker never meets another such part: `banana-gun` is not `gun-gun`.
    gun = id_stem(sa("coingecko", "banana-gun", "BANANA", "Banana Gun", 1, None))
    assert not gun.agrees(id_stem(sa("coinpaprika", "gun-gun", "GUN", "Gun", 1, None)))
    assert asset_id_base("STABLE", "\u200bStable") == "stable"
    assert asset_id_base(None, "Arcium") == "arcium"


def test_canonical_ids_are_readable_ascii_slugs_of_the_name() -> None:
    assert asset_id_base("BTC", "Bitcoin") == "bitcoin"
    assert asset_id_base("ETC", "  Ethereum Classic (old) ") == "ethereum-classic-old"
    assert asset_id_base("XETH", "Ethéreum") == "ethereum"  # accents folded
    assert asset_id_base("ＢＴＣ", "₿") == "btc"  # fullwidth folded; no letters in the name
    assert asset_id_base("$$", "!!") == "asset"


def test_precision_and_recall_on_the_labeled_real_samples() -> None:
    # The CoinGecko items come from snapshots months apart from the CoinPaprika one, so prices
    # of one coin differ by 30-70% there: compared as stale quotes, they no longer outweigh
    # identical ticker, name and id (zcash, stETH). Toncoin (ids `the-open-network` and
    # `toncoin-...`) and weETH (a wrapped copy, caps 1.5x apart) rest on too little: review.
    for score in evaluate(Crosswalk()):
        assert score.precision == 1.0, score.wrong
        assert score.decoys_merged == 0
        assert score.recall >= 0.875, score.missed
    for score in evaluate(load_crosswalk()):
        assert (score.precision, score.decoys_merged) == (1.0, 0), score.wrong
        assert score.recall >= 0.9, score.missed


names = st.sampled_from(["Bitcoin", "Wrapped Bitcoin", "Solana", "Wrapped SOL", "USDC", "WETH"])
records = st.builds(
    sa,
    st.just("coinpaprika"),
    st.text("abcdef-", min_size=1, max_size=8),
    st.sampled_from(["BTC", "SOL", "USDC"]),
    names,
    st.floats(0.5, 2.0),
    st.one_of(st.none(), st.floats(1e6, 1e9)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=12, unique_by=lambda r: r.source_asset_id))
def test_invariants_hold_for_any_batch(batch: list[SourceAsset]) -> None:
    decisions = resolve(batch, EXISTING, Crosswalk())
    assert [d.record for d in decisions] == batch
    linked = [d.asset_id for d in decisions if d.asset_id is not None]
    assert len(linked) == len(set(linked))  # at most one asset per source per canonical asset
    for d in decisions:
        assert (d.asset_id is None) == (d.method in ("new", "ambiguous"))
