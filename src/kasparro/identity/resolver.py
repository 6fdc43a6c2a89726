"""Canonical identity: which existing asset, if any, a never-seen source asset belongs to.

Pure functions over plain data. The rules, in order:

1. The crosswalk decides when it knows: a partner already linked means that asset; a member of
   another crosswalk group means "not that asset".
2. Otherwise only assets that share the ticker are candidates, and a candidate that already holds
   an asset of this source is not one (a canonical asset holds at most one asset per source).
3. Each candidate is scored on identity (vendor ids reduced to a common stem, name similarity)
   and on market agreement (market cap, else price). Market caps far apart veto a match: that is
   how a wrapped or bridged token is told from the coin it wraps.
4. A clear winner is linked; a close call, or a score in the grey zone, becomes a new asset and is
   reported for review. Precision matters more than recall: a wrong merge corrupts two assets,
   a missed one is fixed by adding a crosswalk row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from kasparro.identity.crosswalk import Crosswalk
from kasparro.identity.model import CanonicalAsset, Decision, Lookup, SourceAsset

ACCEPT = 0.75  # a candidate scoring this much (and clearly best) is the same asset
REVIEW = 0.5  # between REVIEW and ACCEPT: plausible, so not created silently
MARGIN = 0.1  # the best candidate must lead the runner-up by this much
MIN_CAP_RATIO = 0.25  # market caps further apart than 4x: different assets
MIN_PRICE_RATIO = 0.5  # prices further apart than 2x: different assets

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_NUMBERED = re.compile(r"-\d+$")  # CoinGecko disambiguates reused ids: "avalanche-2"
# Sources whose ids read `{ticker}-{name slug}` (CoinPaprika, and our CSV slugs).
_TICKER_PREFIXED = frozenset({"coinpaprika", "csv", "csv_weird"})


def slug(text: str) -> str:
    if not text.isascii():  # NFKD splits accents off letters; ASCII text has none to split
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub("-", text.lower()).strip("-")


def asset_id_base(symbol: str, name: str) -> str:
    """A readable canonical id: the name's slug ("bitcoin"), else the ticker's."""
    return (slug(name) or slug(symbol) or "asset")[:150]


def id_stem(asset: SourceAsset) -> str:
    """The part of a vendor id that names the coin: `btc-bitcoin` and `bitcoin` give `bitcoin`."""
    stem = asset.source_asset_id.lower()
    if asset.source in _TICKER_PREFIXED and "-" in stem:
        stem = stem.split("-", 1)[1]
    return _NUMBERED.sub("", stem).replace("-", "")


def _name_key(name: str) -> str:
    return " ".join(slug(name).split("-"))


def name_similarity(a: str, b: str) -> float:
    left, right = _name_key(a), _name_key(b)
    if not left or not right:
        return 0.0
    if left == right or left.replace(" ", "") == right.replace(" ", ""):
        return 1.0
    tokens_a, tokens_b = set(left.split()), set(right.split())
    jaccard = len(tokens_a & tokens_b) / len(tokens_a | tokens_b)
    return max(jaccard, SequenceMatcher(None, left, right).ratio())


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return min(a, b) / max(a, b)


@dataclass(frozen=True, slots=True)
class PairScore:
    score: float
    identity: float
    market: float | None
    veto: str = ""


def score_pair(new: SourceAsset, member: SourceAsset) -> PairScore:
    """How likely two source assets with the same ticker are one asset, in [0, 1]."""
    stem_a, stem_b = id_stem(new), id_stem(member)
    id_score = 1.0 if stem_a == stem_b else 0.8 * SequenceMatcher(None, stem_a, stem_b).ratio()
    identity = max(id_score, name_similarity(new.name, member.name))
    cap_ratio = _ratio(new.market_cap_usd, member.market_cap_usd)
    price_ratio = _ratio(new.price_usd, member.price_usd)
    if cap_ratio is not None and cap_ratio < MIN_CAP_RATIO:
        return PairScore(0.0, identity, cap_ratio, f"market caps differ {1 / cap_ratio:.1f}x")
    if price_ratio is not None and price_ratio < MIN_PRICE_RATIO:
        return PairScore(0.0, identity, price_ratio, f"prices differ {1 / price_ratio:.1f}x")
    if cap_ratio is not None:
        return PairScore(0.7 * identity + 0.3 * cap_ratio, identity, cap_ratio)
    if price_ratio is not None:  # prices agree for every stablecoin: weak evidence
        return PairScore(0.85 * identity + 0.15 * price_ratio, identity, price_ratio)
    return PairScore(0.85 * identity, identity, None)


def lookup_for(records: Iterable[SourceAsset], crosswalk: Crosswalk) -> Lookup:
    """What to load before resolving: assets sharing a ticker, and crosswalk partners."""
    records = list(records)
    return Lookup(
        symbols=frozenset(r.symbol for r in records),
        member_keys=frozenset(p for r in records for p in crosswalk.partners(r.key)),
    )


@dataclass(slots=True)
class _Option:
    record: SourceAsset
    asset: CanonicalAsset
    score: float
    method: str


def resolve(
    records: Sequence[SourceAsset], candidates: Sequence[CanonicalAsset], crosswalk: Crosswalk
) -> list[Decision]:
    """Decide for each never-seen source asset (all from one source) where it belongs.

    Records of one source never merge with each other: to their own source they are distinct.
    """
    options: dict[tuple[str, str], list[_Option]] = {}
    verdicts: dict[tuple[str, str], Decision] = {}
    index = _CandidateIndex(candidates, crosswalk)
    for record in records:
        near = index.near(record)
        if not near:  # most of a first load: nothing shares the ticker or the crosswalk group
            options[record.key] = []
            verdicts[record.key] = Decision(record, None, "new", 0.0)
            continue
        found, verdict = _options_for(record, near, crosswalk)
        options[record.key] = found
        if verdict is not None:
            verdicts[record.key] = verdict

    # Strongest claims first, so two records of a batch never take the same asset.
    taken: dict[str, SourceAsset] = {}
    claims = sorted(
        (o for found in options.values() for o in found if o.record.key not in verdicts),
        key=lambda o: (-o.score, o.record.key, o.asset.asset_id),
    )
    for option in claims:
        key = option.record.key
        if key in verdicts or option.asset.asset_id in taken:
            continue
        taken[option.asset.asset_id] = option.record
        verdicts[key] = Decision(option.record, option.asset.asset_id, option.method, option.score)

    decisions = []
    for record in records:
        decision = verdicts.get(record.key)
        if decision is None:
            found = options[record.key]
            rivals = [o for o in found if o.asset.asset_id in taken]
            decision = Decision(
                record,
                None,
                "ambiguous",
                found[0].score,
                reason="its best match went to "
                + ", ".join(f"{taken[o.asset.asset_id].source_asset_id}" for o in rivals),
                candidates=tuple(_describe(o) for o in found),
            )
        decisions.append(decision)
    return decisions


class _CandidateIndex:
    """Candidates by ticker and by crosswalk group, so each record scores only its own few."""

    def __init__(self, candidates: Sequence[CanonicalAsset], crosswalk: Crosswalk) -> None:
        self._crosswalk = crosswalk
        self._by_symbol: dict[str, list[CanonicalAsset]] = {}
        self._by_group: dict[str, list[CanonicalAsset]] = {}
        for asset in candidates:
            for symbol in {asset.symbol, *(m.symbol for m in asset.members)}:
                self._by_symbol.setdefault(symbol, []).append(asset)
            for group in {crosswalk.group_of(m.key) for m in asset.members} - {None}:
                self._by_group.setdefault(str(group), []).append(asset)

    def near(self, record: SourceAsset) -> Sequence[CanonicalAsset]:
        by_symbol = self._by_symbol.get(record.symbol, [])
        group = self._crosswalk.group_of(record.key)
        if group is None or group not in self._by_group:
            return by_symbol
        found = self._by_group[group]
        seen = {a.asset_id for a in found}
        return found + [a for a in by_symbol if a.asset_id not in seen]


def _options_for(
    record: SourceAsset, candidates: Sequence[CanonicalAsset], crosswalk: Crosswalk
) -> tuple[list[_Option], Decision | None]:
    """Acceptable assets for one record, best first, or a final decision already."""
    group = crosswalk.group_of(record.key)
    eligible: list[CanonicalAsset] = []
    for asset in candidates:
        if asset.has_source(record.source):
            continue
        groups = {crosswalk.group_of(m.key) for m in asset.members} - {None}
        if group is not None and group in groups:
            return [_Option(record, asset, 1.0, "crosswalk")], None
        if groups and (group is not None or len(groups) > 1):
            continue  # the crosswalk says these are different assets
        if any(m.symbol == record.symbol for m in asset.members) or asset.symbol == record.symbol:
            eligible.append(asset)

    scored = sorted(
        ((_best_member_score(record, asset), asset) for asset in eligible),
        key=lambda pair: (-pair[0].score, pair[1].asset_id),
    )
    if not scored or scored[0][0].score < REVIEW:
        return [], Decision(record, None, "new", scored[0][0].score if scored else 0.0)
    best_score = scored[0][0].score
    runner_up = scored[1][0].score if len(scored) > 1 else 0.0
    described = tuple(
        {"asset_id": asset.asset_id, "score": round(s.score, 3), "veto": s.veto}
        for s, asset in scored[:5]
    )
    if best_score < ACCEPT:
        reason = f"best match {scored[0][1].asset_id} scored {best_score:.2f}, below {ACCEPT}"
        return [], Decision(record, None, "ambiguous", best_score, reason, described)
    if best_score - runner_up < MARGIN:
        reason = (
            f"{scored[0][1].asset_id} and {scored[1][1].asset_id} match about equally "
            f"({best_score:.2f} and {runner_up:.2f})"
        )
        return [], Decision(record, None, "ambiguous", best_score, reason, described)
    method = "id" if id_stem(record) in {id_stem(m) for m in scored[0][1].members} else "score"
    return [_Option(record, scored[0][1], best_score, method)], None


def _best_member_score(record: SourceAsset, asset: CanonicalAsset) -> PairScore:
    members = [m for m in asset.members if m.symbol == record.symbol] or list(asset.members)
    if not members:
        return PairScore(name_similarity(record.name, asset.name), 0.0, None)
    scores = [score_pair(record, m) for m in members]
    vetoed = [s for s in scores if s.veto]
    if vetoed:  # one member that is clearly different is enough to keep apart
        return vetoed[0]
    return max(scores, key=lambda s: s.score)


def _describe(option: _Option) -> dict[str, Any]:
    return {"asset_id": option.asset.asset_id, "score": round(option.score, 3)}
