"""Canonical identity: which existing asset, if any, a never-seen source asset belongs to.

Pure functions over plain data, knowing no source by name. The rules, in order:

1. The crosswalk decides when it knows: a partner already linked means that asset; a member of
   another crosswalk group means "not that asset".
2. Otherwise the candidates are the assets with a member that shares a blocking key with the
   record (ticker without `$` or chain suffix, name key, id stem: `evidence.blocking_keys`),
   and a candidate that already holds an asset of this source is not one (a canonical asset
   holds at most one asset per source).
3. Each candidate is scored against its members (`scoring.score_pair`): the log2 odds that
   they are one asset, a sum of calibrated weights for ticker, name, id stem, variant words,
   price (weak for a peg) and market cap. Every weight is kept, for the review record.
4. A clear winner is linked; a close call, or odds in the grey zone, becomes a new asset and
   is reported for review with each candidate's evidence. Precision matters more than recall:
   a wrong merge corrupts two assets, a missed one is fixed by a crosswalk row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from kasparro.identity.crosswalk import Crosswalk
from kasparro.identity.evidence import blocking_keys, id_stem, name_tokens, slug
from kasparro.identity.model import CanonicalAsset, Decision, Lookup, SourceAsset
from kasparro.identity.scoring import (
    ACCEPT_BITS,
    MARGIN_BITS,
    REVIEW_BITS,
    Evidence,
    PairScore,
    score_pair,
)

__all__ = ["asset_id_base", "lookup_for", "name_similarity", "resolve", "slug"]

SHOWN_CANDIDATES = 5  # per review record
CROSSWALK_BITS = 64.0  # a curated pin: certain, but finite so the record stays plain JSON


def asset_id_base(symbol: str | None, name: str) -> str:
    """A readable canonical id: the name's slug ("bitcoin"), else the ticker's."""
    return (slug(name) or slug(symbol or "") or "asset")[:150]


def name_similarity(a: str, b: str) -> float:
    """How alike two names read, in [0, 1] (for reports; the resolver uses levels)."""
    left, right = " ".join(name_tokens(a)), " ".join(name_tokens(b))
    if not left or not right:
        return 0.0
    if left.replace(" ", "") == right.replace(" ", ""):
        return 1.0
    tokens_a, tokens_b = set(left.split()), set(right.split())
    jaccard = len(tokens_a & tokens_b) / len(tokens_a | tokens_b)
    return max(jaccard, SequenceMatcher(None, left, right).ratio())


def _keys(asset: SourceAsset) -> tuple[str | None, set[str]]:
    """Its ticker key, and the text keys it is looked up by: name key, id stem with and
    without generic words (members are indexed by name key and id stem)."""
    keys = blocking_keys(asset)
    stem = id_stem(asset)
    return keys["ticker_key"], {k for k in (keys["name_key"], *stem.whole, *stem.after_ticker) if k}


def lookup_for(records: Iterable[SourceAsset], crosswalk: Crosswalk) -> Lookup:
    """What to load before resolving: assets sharing a blocking key, and crosswalk partners."""
    ticker_keys: set[str] = set()
    text_keys: set[str] = set()
    member_keys: set[tuple[str, str]] = set()
    for record in records:
        ticker, texts = _keys(record)
        if ticker:
            ticker_keys.add(ticker)
        text_keys |= texts
        member_keys.update(crosswalk.partners(record.key))
    return Lookup(frozenset(ticker_keys), frozenset(text_keys), frozenset(member_keys))


@dataclass(slots=True)
class _Option:
    record: SourceAsset
    asset: CanonicalAsset
    score: PairScore
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
        if not near:  # most of a first load: no asset shares a key or a crosswalk group
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
        key=lambda o: (-o.score.bits, o.record.key, o.asset.asset_id),
    )
    for option in claims:
        key = option.record.key
        if key in verdicts or option.asset.asset_id in taken:
            continue
        taken[option.asset.asset_id] = option.record
        verdicts[key] = Decision(
            option.record, option.asset.asset_id, option.method, option.score.probability
        )

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
                found[0].score.probability,
                reason="its best match went to "
                + ", ".join(f"{taken[o.asset.asset_id].source_asset_id}" for o in rivals)
                + f" of the same batch, with stronger evidence: {found[0].score.summary()}",
                candidates=tuple(_describe(o.asset, o.score) for o in found),
            )
        decisions.append(decision)
    return decisions


class _CandidateIndex:
    """Candidates by blocking key and by crosswalk group, so each record scores only its own
    few (the same keys as the database lookup, applied to what it returned)."""

    def __init__(self, candidates: Sequence[CanonicalAsset], crosswalk: Crosswalk) -> None:
        self._crosswalk = crosswalk
        self._by_ticker: dict[str, list[CanonicalAsset]] = {}
        self._by_text: dict[str, list[CanonicalAsset]] = {}
        self._by_group: dict[str, list[CanonicalAsset]] = {}
        for asset in candidates:
            tickers: set[str] = set()
            texts: set[str] = set()
            for member in asset.members:
                keys = blocking_keys(member)  # what the database indexes
                tickers |= {keys["ticker_key"]} - {None}  # type: ignore[arg-type]
                texts |= {keys["name_key"], keys["id_key"]} - {None}  # type: ignore[arg-type]
            for ticker in tickers:
                self._by_ticker.setdefault(ticker, []).append(asset)
            for text in texts:
                self._by_text.setdefault(text, []).append(asset)
            for group in {crosswalk.group_of(m.key) for m in asset.members} - {None}:
                self._by_group.setdefault(str(group), []).append(asset)

    def near(self, record: SourceAsset) -> list[CanonicalAsset]:
        ticker, texts = _keys(record)
        group = self._crosswalk.group_of(record.key)
        found: dict[str, CanonicalAsset] = {}
        lists = [self._by_group.get(group, []) if group is not None else []]
        lists.append(self._by_ticker.get(ticker, []) if ticker else [])
        lists += [self._by_text.get(text, []) for text in sorted(texts)]
        for assets in lists:
            for asset in assets:
                found.setdefault(asset.asset_id, asset)
        return list(found.values())


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
            pinned = PairScore(CROSSWALK_BITS, (Evidence("crosswalk", "same group", 0.0),))
            return [_Option(record, asset, pinned, "crosswalk")], None
        if groups and (group is not None or len(groups) > 1):
            continue  # the crosswalk says these are different assets
        eligible.append(asset)

    scored = sorted(
        ((s, asset) for asset in eligible if (s := _best_member_score(record, asset))),
        key=lambda pair: (-pair[0].bits, pair[1].asset_id),
    )
    if not scored or scored[0][0].bits < REVIEW_BITS:
        probability = scored[0][0].probability if scored else 0.0
        return [], Decision(record, None, "new", probability)
    best, best_asset = scored[0]
    described = tuple(_describe(asset, s) for s, asset in scored[:SHOWN_CANDIDATES])
    if best.bits < ACCEPT_BITS:
        reason = (
            f"best match {best_asset.asset_id} at {best.summary()}: "
            f"below the {ACCEPT_BITS:.1f} bits (odds 19:1) needed to link"
        )
        return [], Decision(record, None, "ambiguous", best.probability, reason, described)
    if len(scored) > 1 and best.bits - scored[1][0].bits < MARGIN_BITS:
        runner, runner_asset = scored[1]
        reason = (
            f"{best_asset.asset_id} ({best.bits:+.1f} bits) and {runner_asset.asset_id} "
            f"({runner.bits:+.1f} bits) match about equally: the best must lead by "
            f"{MARGIN_BITS:.1f} bits (10 times likelier)"
        )
        return [], Decision(record, None, "ambiguous", best.probability, reason, described)
    id_level = next((e.level for e in best.evidence if e.comparison == "id"), "")
    method = "id" if id_level == "same" else "score"
    return [_Option(record, best_asset, best, method)], None


def _best_member_score(record: SourceAsset, asset: CanonicalAsset) -> PairScore | None:
    """The strongest evidence any member of another source gives (members of one asset are one
    coin, so the best-described of them speaks for it)."""
    scores = [score_pair(record, m) for m in asset.members if m.source != record.source]
    return max(scores, key=lambda s: s.bits) if scores else None


def _describe(asset: CanonicalAsset, score: PairScore) -> dict[str, Any]:
    return {"asset_id": asset.asset_id, "score": round(score.probability, 3), **score.explain()}
