"""How much each piece of evidence says, in bits: a Fellegi-Sunter match weight per level.

For a pair of source assets found as candidates (sharing a ticker, a name key or an id stem),
each comparison in `kasparro.identity.evidence` lands on one level. Its weight is
log2(m / u): m is how often two listings of ONE coin land there, u how often two DIFFERENT
coins found as candidates do. The pair's score is the prior log-odds plus the sum of the
weights: the log2 odds that the two are one asset, assuming the comparisons independent.

The m and u below are set from first principles, not estimated from labels (no labeled pair is
read to set them; the evaluation set under `../shared` only measures the result):

- Candidates are found mostly by the ticker, and tickers collide (a third of coins share one),
  so a shared ticker or name is weak evidence among candidates (u is high for both): clones
  reuse a popular coin's ticker and name. An unnumbered shared id stem is stronger: vendors
  number the later of two coins of one name (`pepe-2`, `neiro13-neiro`), so two unnumbered
  stems name the first coin of that name at each vendor.
- Two vendors quote one coin's price within a few percent (m of "within 5%" 0.9), and an
  unrelated coin's price, anywhere between 1e-8 and 1e5 USD, is rarely that close (u 0.01):
  for an unpegged coin price agreement is the strongest evidence there is, and disagreement the
  strongest against. For a peg (a USD stablecoin, a wrapped, bridged or staked copy) every
  copy has the same price, so agreement says little (u 0.6). Prices quoted more than a day
  apart (a CSV export months old next to a live API) are compared as stale quotes: over weeks
  a coin moves tens of percent and sometimes several-fold, so agreement is weaker evidence and
  a 2x gap is no longer evidence against; only a gap beyond 2x still counts against. A peg's
  stale quotes say nothing (what it is pegged to, ETH say, moved meanwhile).
- Market caps differ between vendors that count circulating supply differently: within 30% for
  most coins, but 1.5-5x for about one pair in ten. So "within 6x" is neutral (m and u about
  equal), and only caps further apart than that count against, as calibrated evidence, not a
  veto; close caps count for.
- A variant word (wrapped, bridged, ...) or a parenthesized qualifier on one side only is what a
  copy of a coin looks like next to the coin: strong evidence of two assets.

Decisions, from the posterior odds: at least `ACCEPT_BITS` (95% sure) and `MARGIN_BITS` ahead
of the runner-up links; from 0 (even odds) up to that goes to review; below 0 is a new asset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kasparro.identity import evidence as ev
from kasparro.identity.model import SourceAsset

# A candidate pair is one asset about one time in ten: most coins listed by one vendor are not
# listed by the other, and a colliding ticker brings several candidates.
PRIOR_MATCH = 0.1
PRIOR_BITS = math.log2(PRIOR_MATCH / (1 - PRIOR_MATCH))
ACCEPT_BITS = math.log2(19)  # posterior >= 0.95
MARGIN_BITS = math.log2(10)  # ten times likelier than the runner-up
REVIEW_BITS = 0.0  # posterior >= 0.5: plausible, so not created silently

# (m, u) per comparison and level; the comments say why.
M_U: dict[str, dict[str, tuple[float, float]]] = {
    "ticker": {
        "same": (0.96, 0.70),  # 3% of pairs differ in ticker; most candidates share it
        "same_without_affixes": (0.02, 0.05),  # `$ACAT`/`ACAT`; also `USDC.E`/`USDC` copies
        "different": (0.02, 0.25),  # candidates found by name or id stem
        "missing": (1.0, 1.0),
    },
    "name": {
        "same": (0.75, 0.20),  # clones copy names, so weak
        "same_core": (0.06, 0.04),  # "Ankr Network" / "Ankr"
        "contained": (0.07, 0.08),  # "Aavegotchi FOMO" / "FOMO"; also "Pepe" / "Pepe Inu"
        "similar": (0.04, 0.10),
        "different": (0.08, 0.58),  # a fifth of one coin's names differ between vendors
    },
    "id": {
        "same": (0.50, 0.04),  # first coin of that name at both vendors
        "same_numbered": (0.05, 0.10),  # a vendor numbered one: which clone is which is open
        "stem_is_name": (0.10, 0.03),  # `xrp-xrp` "XRP" / `ripple` "XRP"
        "different": (0.35, 0.83),  # vendors pick their own slugs
    },
    "variant": {
        "none": (0.95, 0.80),
        "same": (0.04, 0.05),
        "different": (0.01, 0.15),  # a copy next to its original
    },
    "price": {
        "within_5pct": (0.80, 0.005),  # 10% of 13 decades: 1 in 300; clones crowd, so 1 in 200
        "within_25pct": (0.15, 0.04),  # quotes minutes apart in a fast market
        "within_2x": (0.04, 0.08),
        "further": (0.01, 0.87),
        "missing": (1.0, 1.0),
    },
    "stale_price": {  # quoted more than a day apart: a coin drifts, u as for "price"
        "within_5pct": (0.25, 0.005),
        "within_25pct": (0.35, 0.04),
        "within_2x": (0.25, 0.08),
        "further": (0.15, 0.87),  # several-fold in months: a meme coin, a crash
        "missing": (1.0, 1.0),
    },
    "pegged_price": {
        "within_5pct": (0.80, 0.60),  # every copy of a peg is at the peg
        "within_25pct": (0.15, 0.20),
        "within_2x": (0.04, 0.10),
        "further": (0.01, 0.10),
        "missing": (1.0, 1.0),
        "quoted_apart": (1.0, 1.0),  # the pegged-to coin itself moved meanwhile: says nothing
    },
    "market_cap": {
        "within_30pct": (0.82, 0.03),  # 2 x ln 1.3 of ln 1e7 (caps span 1e4-1e11): 0.03
        "within_6x": (0.16, 0.18),  # one true pair in ten is 1.5-5x apart: nearly neutral
        "further": (0.02, 0.78),
        "missing": (1.0, 1.0),
    },
}
WEIGHTS: dict[str, dict[str, float]] = {
    comparison: {level: math.log2(m / u) for level, (m, u) in levels.items()}
    for comparison, levels in M_U.items()
}


@dataclass(frozen=True, slots=True)
class Evidence:
    comparison: str
    level: str
    weight: float  # bits


@dataclass(frozen=True, slots=True)
class PairScore:
    """The evidence that two source assets are one asset, and its sum with the prior."""

    bits: float
    evidence: tuple[Evidence, ...]
    member: str = ""  # the compared member, `source:id`

    @property
    def probability(self) -> float:
        return 1.0 / (1.0 + math.pow(2.0, -self.bits))

    def explain(self) -> dict[str, Any]:
        """For the review record: every comparison, its level and weight."""
        return {
            "member": self.member,
            "bits": round(self.bits, 2),
            "probability": round(self.probability, 4),
            "evidence": [
                {"evidence": e.comparison, "level": e.level, "weight": round(e.weight, 2)}
                for e in self.evidence
            ],
        }

    def summary(self) -> str:
        parts = ", ".join(f"{e.comparison} {e.level} {e.weight:+.1f}" for e in self.evidence)
        return f"{self.bits:+.1f} bits (prior {PRIOR_BITS:+.1f}, {parts})"


def score_pair(new: SourceAsset, member: SourceAsset) -> PairScore:
    """The log2 odds that `new` and `member` (of another source) are one asset."""
    price_kind, price_level = "price", ev.compare_price(new, member)
    if ev.pegged(new, member):
        price_kind = "pegged_price"
        if ev.quoted_apart(new, member) and price_level != "missing":
            price_level = "quoted_apart"
    elif ev.quoted_apart(new, member):
        price_kind = "stale_price"
    levels = (
        ("ticker", ev.compare_ticker(new, member)),
        ("name", ev.compare_name(new.name, member.name)),
        ("id", ev.compare_id(new, member)),
        ("variant", ev.compare_variant(new, member)),
        (price_kind, price_level),
        ("market_cap", ev.compare_cap(new, member)),
    )
    found = tuple(
        Evidence(comparison, level, WEIGHTS[comparison][level]) for comparison, level in levels
    )
    bits = PRIOR_BITS + sum(e.weight for e in found)
    return PairScore(bits, found, f"{member.source}:{member.source_asset_id}")
