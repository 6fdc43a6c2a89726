"""What two source assets have in common: normalized keys, and each comparison's level.

Pure and source-agnostic: no rule names a vendor. A vendor id is read by a generic rule (an id
that starts with the record's own ticker, optionally numbered, then `-`, names the coin by what
follows), so a new source is compared as well as the built-in ones.

Each `compare_*` returns a level name; `kasparro.identity.scoring` gives each level its weight.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from difflib import SequenceMatcher
from functools import lru_cache

from kasparro.identity.model import SourceAsset

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_NUMBERED = re.compile(r"-\d+$")  # a vendor disambiguating a reused id: "avalanche-2"
_PAREN = re.compile(r"\(([^)]*)\)|\[([^\]]*)\]")  # "(Ethereum)", "[OLD]"
# A chain or deployment suffix on a ticker ("USDC.E", "CAKE-BSC"): which copy, not which coin.
_TICKER_SUFFIX = re.compile(
    r"[.\-_ ](E|BSC|BEP20|ERC20|TRC20|SPL|SOL|ETH|ARB|OP|BASE|POLY|MATIC|AVAX|WH)$"
)
# Words that say what kind of thing a coin is, not which coin: "Ankr Network" is "Ankr".
GENERIC_WORDS = frozenset(
    {"token", "tokens", "coin", "coins", "network", "protocol", "finance", "the", "official"}
)
# Words that make a copy of another asset: a wrapped or bridged coin shares the original's
# ticker and price, so where one side says this and the other does not, they are two assets.
VARIANT_WORDS = frozenset(
    {"wrapped", "bridged", "bridge", "staked", "restaked", "peg", "pegged", "wormhole"}
)
# Derived keys are cached: a record meets each of its candidates, a member many records.
_cached = lru_cache(maxsize=1 << 16)
# A USD stablecoin trades within a few tenths of a percent of $1 (1.5% allows a brief de-peg).
USD_PEG_TOLERANCE = 0.015
# Prices quoted further apart than this are compared as stale quotes (`scoring`'s stale_price).
QUOTES_APART = timedelta(days=1)


def slug(text: str) -> str:
    if not text.isascii():  # NFKD splits accents off letters; ASCII text has none to split
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub("-", text.lower()).strip("-")


@_cached
def ticker_key(symbol: str | None) -> str:
    """A ticker without `$` and chain suffixes: `$ACAT` and `ACAT`, `USDC.E` and `USDC` agree."""
    if not symbol:
        return ""
    key = symbol.upper().strip().lstrip("$")
    return _TICKER_SUFFIX.sub("", key) or key


@_cached
def name_tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in slug(name).split("-") if t)


@_cached
def core_tokens(name: str) -> tuple[str, ...]:
    """The name's words, in order, without generic words and a parenthesized qualifier (all of
    them if nothing else is left)."""
    tokens = name_tokens(_PAREN.sub(" ", name)) or name_tokens(name)
    core = tuple(t for t in tokens if t not in GENERIC_WORDS)
    return core or tokens


@_cached
def name_key(name: str) -> str:
    """An indexable key of the name: its core words run together ("Ankr Network" -> "ankr"),
    comparable with an id stem ("wrapped-bitcoin" -> "wrappedbitcoin")."""
    return "".join(core_tokens(name))[:200]


@dataclass(frozen=True, slots=True)
class IdStem:
    """What a vendor id says of the coin: the whole id, and the part after the record's own
    ticker when the id starts with it; each compact, with and without generic words."""

    whole: frozenset[str]  # "busy-dao" -> {"busydao"}
    after_ticker: frozenset[str]  # "btc-bitcoin" (BTC) -> {"bitcoin"}; empty if no prefix
    numbered: bool  # "pepe-2", "neiro13-neiro": a later coin of a name already taken

    @property
    def stem(self) -> str:
        """The one indexed key: the part after the ticker, else the whole id."""
        return min(self.after_ticker or self.whole, key=len, default="")

    def agrees(self, other: IdStem) -> bool:
        # The part after a ticker is never compared with another such part: `banana-gun`
        # (BANANA) and `gun-gun` (GUN) would both leave "gun".
        return bool(
            self.whole & other.whole
            or self.whole & other.after_ticker
            or self.after_ticker & other.whole
        )


def _compact(raw: str) -> frozenset[str]:
    tokens = [t for t in _NON_ALNUM.split(raw) if t]
    core = [t for t in tokens if t not in GENERIC_WORDS] or tokens
    return frozenset(k[:200] for k in ("".join(tokens), "".join(core)) if k)


@_cached
def id_stem(asset: SourceAsset) -> IdStem:
    """`btc-bitcoin`, `bitcoin` and `bitcoin-2` all name `bitcoin` (the last one numbered)."""
    raw = asset.source_asset_id.lower()
    numbered = bool(_NUMBERED.search(raw))
    raw = _NUMBERED.sub("", raw)
    ticker = slug(asset.symbol or "")
    after: frozenset[str] = frozenset()
    if ticker:
        prefixed = re.match(rf"{re.escape(ticker)}(\d*)-(.+)$", raw)
        if prefixed:
            numbered = numbered or bool(prefixed.group(1))
            after = _compact(prefixed.group(2))
    return IdStem(_compact(raw), after, numbered)


@_cached
def variant_marks(asset: SourceAsset) -> frozenset[str]:
    """Variant words in the name or id ("Wrapped SOL", `binance-peg-weth`)."""
    words = set(name_tokens(asset.name)) | set(_NON_ALNUM.split(asset.source_asset_id.lower()))
    return frozenset(w for w in words if w in VARIANT_WORDS)


def blocking_keys(asset: SourceAsset) -> dict[str, str | None]:
    """The indexed keys a candidate is found by (columns of `asset_sources`)."""
    return {
        "ticker_key": ticker_key(asset.symbol) or None,
        "name_key": name_key(asset.name) or None,
        "id_key": id_stem(asset).stem or None,
    }


# --- comparisons: each returns a level name -------------------------------------------------


def compare_ticker(a: SourceAsset, b: SourceAsset) -> str:
    if not a.symbol or not b.symbol:
        return "missing"
    if a.symbol.upper() == b.symbol.upper():
        return "same"
    if ticker_key(a.symbol) == ticker_key(b.symbol):
        return "same_without_affixes"
    return "different"


def compare_name(a: str, b: str) -> str:
    left, right = name_tokens(a), name_tokens(b)
    if not left or not right:
        return "different"
    if "".join(left) == "".join(right):
        return "same"
    core_a, core_b = set(core_tokens(a)), set(core_tokens(b))
    if core_a == core_b or name_key(a) == name_key(b):
        return "same_core"
    if core_a <= core_b or core_b <= core_a or _prefixed(a, b):
        return "contained"
    jaccard = len(core_a & core_b) / len(core_a | core_b)
    joined_a, joined_b = " ".join(left), " ".join(right)
    first_a, first_b = core_tokens(a)[0], core_tokens(b)[0]
    if jaccard >= 0.5 or SequenceMatcher(None, joined_a, joined_b).ratio() >= 0.85:
        return "similar"
    if first_a == first_b and len(first_a) >= 4:
        return "similar"  # "Aleph Cloud" / "aleph.im": the same leading word
    return "different"


def _prefixed(a: str, b: str) -> bool:
    """One name's letters start the other's: "Bend Token" / "BendDAO", "USDC" / "USD Coin"."""
    for key_a, key_b in (
        (name_key(a), name_key(b)),
        ("".join(name_tokens(a)), "".join(name_tokens(b))),
    ):
        shorter, longer = sorted((key_a, key_b), key=len)
        if len(shorter) >= 4 and longer.startswith(shorter):
            return True
    return False


def compare_id(a: SourceAsset, b: SourceAsset) -> str:
    stem_a, stem_b = id_stem(a), id_stem(b)
    if stem_a.agrees(stem_b):
        return "same_numbered" if stem_a.numbered or stem_b.numbered else "same"
    keys_a, keys_b = stem_a.whole | stem_a.after_ticker, stem_b.whole | stem_b.after_ticker
    if keys_a & {name_key(b.name)} or keys_b & {name_key(a.name)}:
        return "stem_is_name"
    return "different"


def compare_variant(a: SourceAsset, b: SourceAsset) -> str:
    marks_a, marks_b = variant_marks(a), variant_marks(b)
    if marks_a == marks_b:
        return "same" if marks_a else "none"
    return "different"


def pegged(a: SourceAsset, b: SourceAsset) -> bool:
    """Prices that would agree for any two copies of one peg: a USD stablecoin, or a wrapped,
    bridged or staked asset, which trades at its original's price."""
    if variant_marks(a) or variant_marks(b):
        return True
    prices = [p for p in (a.price_usd, b.price_usd) if p is not None and p > 0]
    return bool(prices) and all(abs(p - 1.0) <= USD_PEG_TOLERANCE for p in prices)


def log_ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return abs(math.log(a / b))


def quoted_apart(a: SourceAsset, b: SourceAsset) -> bool:
    """Whether two prices were quoted too far apart in time to be compared as of one moment (a
    coin routinely moves 10-30% in a day, and several-fold in months)."""
    if a.observed_at is None or b.observed_at is None:
        return False
    return abs(a.observed_at - b.observed_at) > QUOTES_APART


def compare_price(a: SourceAsset, b: SourceAsset) -> str:
    apart = log_ratio(a.price_usd, b.price_usd)
    if apart is None:
        return "missing"
    if apart <= math.log(1.05):
        return "within_5pct"
    if apart <= math.log(1.25):
        return "within_25pct"
    if apart <= math.log(2.0):
        return "within_2x"
    return "further"


def compare_cap(a: SourceAsset, b: SourceAsset) -> str:
    apart = log_ratio(a.market_cap_usd, b.market_cap_usd)
    if apart is None:
        return "missing"
    if apart <= math.log(1.3):
        return "within_30pct"
    if apart <= math.log(6.0):
        return "within_6x"
    return "further"
