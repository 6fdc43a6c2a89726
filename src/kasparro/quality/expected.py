"""How a source declares the item shape its upstream is known to deliver, for drift detection.

A shape maps a dotted path into one item (`quotes.USD.price`) to a `FieldSpec`. Its `role` says
what normalization reads it as; fields without a role are only kept in the raw payload. Each
source declares its own (`Source.expected_shape`, next to its normalizer); CSV sources have no
fixed shape.
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


def spec(
    *kinds: Kind,
    role: Role | None = None,
    required: bool = False,
    always_present: bool = True,
    anchors: tuple[Anchor, ...] = (),
) -> FieldSpec:
    return FieldSpec(frozenset(kinds), role, required, always_present, anchors)


def expected_schema(source: str) -> Mapping[str, FieldSpec] | None:
    """The item shape a source declares (`Source.expected_shape`); None for sources without a
    fixed one (CSV) and for names no installed source has."""
    from kasparro.sources.registry import expected_shape

    return expected_shape(source)
