"""The item shapes the API sources are known to deliver (see upstream-specs/FACTS.md).

A field is a dotted path into one item (`quotes.USD.price`). Its `role` says what normalization
reads it as; fields without a role are only kept in the raw payload. CSV sources have no fixed
schema here, so they have no entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

# JSON value kinds, with the two string shapes the upstreams use for numbers told apart.
Kind = Literal[
    "null", "bool", "number", "numeric_string", "empty_string", "string", "object", "array"
]
Role = Literal["id", "symbol", "name", "price", "market_cap", "volume", "timestamp"]
AnchorRule = Literal["between", "ratio", "product", "off_ath"]

NUMBER_ROLES: frozenset[Role] = frozenset({"price", "market_cap", "volume"})
# Kinds normalization can turn into a value (or into "absent") without an error.
USABLE_KINDS: Mapping[Role, frozenset[Kind]] = {
    **{
        role: frozenset({"number", "numeric_string", "null", "empty_string"})
        for role in NUMBER_ROLES
    },
    "id": frozenset({"string"}),
    "symbol": frozenset({"string"}),
    "name": frozenset({"string"}),
    "timestamp": frozenset({"string"}),
}


@dataclass(frozen=True, slots=True)
class Anchor:
    """Two other fields of the same item that predict this field's value.

    between: first <= value <= second; ratio: value ~ first / second; product: value ~ first *
    second; off_ath: value ~ first * (1 + second / 100) (an all-time high and the % below it).
    """

    rule: AnchorRule
    first: str
    second: str


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kinds: frozenset[Kind]
    role: Role | None = None
    required: bool = False
    # False for fields that come only with some plans or request parameters.
    always_present: bool = True
    anchors: tuple[Anchor, ...] = ()


def _spec(
    *kinds: Kind,
    role: Role | None = None,
    required: bool = False,
    always_present: bool = True,
    anchors: tuple[Anchor, ...] = (),
) -> FieldSpec:
    return FieldSpec(frozenset(kinds), role, required, always_present, anchors)


_NUMBER = _spec("number", "null")
_PAPRIKA_NUMBER = _spec("number", "empty_string", "null")

COINGECKO: Mapping[str, FieldSpec] = {
    "id": _spec("string", role="id", required=True),
    "symbol": _spec("string", role="symbol", required=True),
    "name": _spec("string", role="name", required=True),
    "image": _spec("string"),
    "current_price": _spec(
        "number",
        "null",
        role="price",
        required=True,
        anchors=(
            Anchor("between", "low_24h", "high_24h"),
            Anchor("ratio", "market_cap", "circulating_supply"),
        ),
    ),
    "market_cap": _spec(
        "number",
        "null",
        role="market_cap",
        anchors=(Anchor("product", "current_price", "circulating_supply"),),
    ),
    "total_volume": _spec("number", "null", role="volume"),
    **dict.fromkeys(
        (
            "market_cap_rank",
            "fully_diluted_valuation",
            "high_24h",
            "low_24h",
            "price_change_24h",
            "price_change_percentage_24h",
            "market_cap_change_24h",
            "market_cap_change_percentage_24h",
            "circulating_supply",
            "total_supply",
            "max_supply",
            "ath",
            "ath_change_percentage",
            "atl",
            "atl_change_percentage",
        ),
        _NUMBER,
    ),
    "ath_date": _spec("string", "null"),
    "atl_date": _spec("string", "null"),
    "roi": _spec("object", "null"),
    "last_updated": _spec("string", role="timestamp", required=True),
    # Only with `sparkline=true` and `price_change_percentage=...`.
    "sparkline_in_7d": _spec("object", always_present=False),
    **{
        f"price_change_percentage_{window}_in_currency": _spec(
            "number", "null", always_present=False
        )
        for window in ("1h", "24h", "7d", "14d", "30d", "200d", "1y")
    },
}

_USD = "quotes.USD."
COINPAPRIKA: Mapping[str, FieldSpec] = {
    "id": _spec("string", role="id", required=True),
    "name": _spec("string", role="name", required=True),
    "symbol": _spec("string", role="symbol", required=True),
    "rank": _spec("number"),
    # Absent on the free plan.
    "circulating_supply": _spec("number", "empty_string", "null", always_present=False),
    "total_supply": _PAPRIKA_NUMBER,
    "max_supply": _PAPRIKA_NUMBER,
    "beta_value": _PAPRIKA_NUMBER,
    "first_data_at": _spec("string", "empty_string", "null"),
    "last_updated": _spec("string", role="timestamp", required=True),
    f"{_USD}price": _spec(
        "number",
        "empty_string",
        "null",
        role="price",
        required=True,
        anchors=(
            Anchor("off_ath", f"{_USD}ath_price", f"{_USD}percent_from_price_ath"),
            Anchor("ratio", f"{_USD}market_cap", "circulating_supply"),
        ),
    ),
    f"{_USD}market_cap": _spec(
        "number",
        "empty_string",
        "null",
        role="market_cap",
        anchors=(Anchor("product", f"{_USD}price", "circulating_supply"),),
    ),
    f"{_USD}volume_24h": _spec("number", "empty_string", "null", role="volume"),
    **{
        f"{_USD}{name}": _PAPRIKA_NUMBER
        for name in (
            "volume_24h_change_24h",
            "market_cap_change_24h",
            "percent_change_15m",
            "percent_change_30m",
            "percent_change_1h",
            "percent_change_6h",
            "percent_change_12h",
            "percent_change_24h",
            "percent_change_7d",
            "percent_change_30d",
            "percent_change_1y",
            "ath_price",
            "percent_from_price_ath",
        )
    },
    f"{_USD}ath_date": _spec("string", "empty_string", "null"),
}

EXPECTED: Mapping[str, Mapping[str, FieldSpec]] = {
    "coingecko": COINGECKO,
    "coinpaprika": COINPAPRIKA,
}


def expected_schema(source: str) -> Mapping[str, FieldSpec] | None:
    """The expected item schema of an API source; None for sources without a fixed one (CSV)."""
    return EXPECTED.get(source)
