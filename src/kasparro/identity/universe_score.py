"""Scoring the resolver on a labeled universe: which links it made, which were right, which it
missed and why. Pure: the served universe and what the runs left in the database in, a report
out (definitions in `kasparro.identity.universe_eval`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kasparro.identity.resolver import name_similarity

LEVELS = ("high", "medium", "low")
SOURCES = ("coingecko", "coinpaprika")
Key = tuple[str, str]  # (source, source asset id)


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    symbol: str
    name: str


@dataclass(frozen=True, slots=True)
class EvalUniverse:
    coingecko: dict[str, Entry]  # served, by id
    coinpaprika: dict[str, Entry]
    pairs: dict[Key, str]  # (cg id, cp id) -> confidence, every row of pairs.csv

    def served_pairs(self) -> dict[Key, str]:
        return {
            (cg, cp): level
            for (cg, cp), level in self.pairs.items()
            if cg in self.coingecko and cp in self.coinpaprika
        }


@dataclass(frozen=True, slots=True)
class Loaded:
    """What one order of runs left in the database."""

    owner: dict[Key, str]  # source asset -> canonical asset id
    methods: dict[Key, tuple[str, float]]  # source asset -> (match_method, match_score)
    reviews: dict[Key, str]  # source asset kept apart for review -> reason
    quarantined: dict[Key, str]  # source asset -> reason code


@dataclass(frozen=True, slots=True)
class LevelScore:
    true_pairs: int  # pairs of this confidence with both ids served
    predicted: int  # labeled links counted under this level (correct + wrong)
    correct: int
    wrong: int
    precision: float | None  # correct / predicted
    recall: float | None  # correct / true_pairs
    ambiguous: int  # coins of those pairs kept apart for review
    quarantined: int  # coins of those pairs quarantined by the ETL


@dataclass(frozen=True, slots=True)
class OrderReport:
    order: str
    levels: dict[str, LevelScore]  # high, medium, low, all
    links: int  # every predicted cross-vendor link
    unlabeled: int  # links between two ids that pairs.csv does not name
    reviews: int  # every identity review
    quarantined: dict[str, int]  # per source
    misses: list[dict[str, Any]]  # worst first
    wrong: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=dict)


def score(universe: EvalUniverse, order: str, loaded: Loaded) -> OrderReport:
    """The report of one order: links compared with pairs.csv (definitions in the docstring)."""
    cg_label = {cg: (cp, level) for (cg, cp), level in universe.pairs.items()}
    cp_label = {cp: (cg, level) for (cg, cp), level in universe.pairs.items()}
    members: dict[str, dict[str, str]] = {}
    for (source, source_id), asset_id in loaded.owner.items():
        members.setdefault(asset_id, {})[source] = source_id
    links = {(m["coingecko"], m["coinpaprika"]) for m in members.values() if len(m) == 2}
    served = universe.served_pairs()
    counts = {
        level: dict.fromkeys(("correct", "wrong", "ambiguous", "quarantined"), 0)
        for level in LEVELS
    }
    wrong: list[dict[str, Any]] = []
    unlabeled = 0
    for cg, cp in sorted(links):
        if (cg, cp) in universe.pairs:
            counts[universe.pairs[cg, cp]]["correct"] += 1
            continue
        labels = [cg_label[cg][1]] if cg in cg_label else []
        labels += [cp_label[cp][1]] if cp in cp_label else []
        if not labels:
            unlabeled += 1
            continue
        level = max(labels, key=LEVELS.index)  # the least confident label decides
        counts[level]["wrong"] += 1
        wrong.append(_wrong_link(universe, loaded, cg, cp, level, cg_label, cp_label))
    for (cg, cp), level in served.items():
        for key in (("coingecko", cg), ("coinpaprika", cp)):
            counts[level]["ambiguous"] += key in loaded.reviews
            counts[level]["quarantined"] += key in loaded.quarantined
    levels = {
        level: _level(sum(1 for v in served.values() if v == level), **counts[level])
        for level in LEVELS
    }
    levels["all"] = _level(
        len(served),
        **{
            k: sum(c[k] for c in counts.values())
            for k in ("correct", "wrong", "ambiguous", "quarantined")
        },
    )
    partner_of = {k: _partner(members, asset_id, k[0]) for k, asset_id in loaded.owner.items()}
    misses = [
        _miss(universe, loaded, partner_of, cg, cp, level)
        for (cg, cp), level in served.items()
        if (cg, cp) not in links
    ]
    misses.sort(
        key=lambda m: (
            LEVELS.index(m["confidence"]),
            not m["same_ticker"],
            -m["name_similarity"],
            m["coingecko"]["id"],
        )
    )
    return OrderReport(
        order=order,
        levels=levels,
        links=len(links),
        unlabeled=unlabeled,
        reviews=len(loaded.reviews),
        quarantined={s: sum(1 for k in loaded.quarantined if k[0] == s) for s in SOURCES},
        misses=misses,
        wrong=wrong,
    )


def _level(
    true_pairs: int, correct: int, wrong: int, ambiguous: int, quarantined: int
) -> LevelScore:
    predicted = correct + wrong
    return LevelScore(
        true_pairs=true_pairs,
        predicted=predicted,
        correct=correct,
        wrong=wrong,
        precision=round(correct / predicted, 4) if predicted else None,
        recall=round(correct / true_pairs, 4) if true_pairs else None,
        ambiguous=ambiguous,
        quarantined=quarantined,
    )


def _partner(members: dict[str, dict[str, str]], asset_id: str, source: str) -> str | None:
    return next((i for s, i in members[asset_id].items() if s != source), None)


def _fate(loaded: Loaded, partner_of: dict[Key, str | None], key: Key) -> str:
    """Where a source asset ended up, in words."""
    if key in loaded.quarantined:
        return f"quarantined ({loaded.quarantined[key]})"
    if key not in loaded.owner:
        return "not loaded"
    partner = partner_of.get(key)
    if partner is not None:
        return f"linked to {partner}"
    if key in loaded.reviews:
        return f"kept apart for review: {loaded.reviews[key]}"
    return f"alone ({loaded.methods[key][0]})"


def _side(universe: EvalUniverse, source: str, source_id: str) -> dict[str, str]:
    listing = universe.coingecko if source == "coingecko" else universe.coinpaprika
    entry = listing.get(source_id)
    return {
        "id": source_id,
        "symbol": entry.symbol if entry else "",
        "name": entry.name if entry else "",
    }


def _miss(
    universe: EvalUniverse,
    loaded: Loaded,
    partner_of: dict[Key, str | None],
    cg: str,
    cp: str,
    level: str,
) -> dict[str, Any]:
    left, right = _side(universe, "coingecko", cg), _side(universe, "coinpaprika", cp)
    left["fate"] = _fate(loaded, partner_of, ("coingecko", cg))
    right["fate"] = _fate(loaded, partner_of, ("coinpaprika", cp))
    return {
        "confidence": level,
        "same_ticker": left["symbol"].strip().casefold() == right["symbol"].strip().casefold(),
        "name_similarity": round(name_similarity(left["name"], right["name"]), 3),
        "coingecko": left,
        "coinpaprika": right,
    }


def _wrong_link(
    universe: EvalUniverse,
    loaded: Loaded,
    cg: str,
    cp: str,
    level: str,
    cg_label: dict[str, tuple[str, str]],
    cp_label: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    left, right = _side(universe, "coingecko", cg), _side(universe, "coinpaprika", cp)
    left["true_partner"] = cg_label[cg][0] if cg in cg_label else ""
    right["true_partner"] = cp_label[cp][0] if cp in cp_label else ""
    # The record loaded second made the link; the first one's method is "new".
    methods = [loaded.methods[("coingecko", cg)], loaded.methods[("coinpaprika", cp)]]
    method, match_score = max(methods, key=lambda m: m[0] != "new")
    return {
        "confidence": level,
        "method": method,
        "score": round(match_score, 3),
        "coingecko": left,
        "coinpaprika": right,
    }
