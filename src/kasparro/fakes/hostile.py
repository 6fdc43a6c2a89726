"""Hostile records, per vendor: what a careless or broken upstream really sends.

Each case is one vendor item (raw JSON bytes, served as is by the fakes through
`FakeState.extra_items`) or one CSV line, derived from a good record and broken in one way:
characters no column can store, ids longer than any column, numbers no float holds, dates before
2009 or far ahead, text where a number belongs. Every case must end in quarantine with a reason,
and never stop the good records beside it. Used by the tests and by `bench/soak.py`.
"""

from __future__ import annotations

import copy
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

# A value written into the JSON exactly as given (for what a serializer would refuse to write).
Raw = bytes


@dataclass(frozen=True, slots=True)
class Field:
    """Where a unified field lives in a vendor's item."""

    id: str
    symbol: str
    name: str
    price: str  # dotted for nested fields
    observed_at: str


FIELDS = {
    "coingecko": Field("id", "symbol", "name", "current_price", "last_updated"),
    "coinpaprika": Field("id", "symbol", "name", "quotes.USD.price", "last_updated"),
}

# (class, which field, the value written there)
_CASES: list[tuple[str, str, Any]] = [
    ("nul_in_name", "name", "Evil\u0000Coin"),
    ("cr_in_symbol", "symbol", "EV\rL"),
    ("escape_in_name", "name", "\u001b[31mRed Coin"),
    ("control_in_id", "id", "evil\u0007coin"),
    ("lone_surrogate_in_name", "name", Raw(b'"Broken \\ud800 Coin"')),
    ("invalid_utf8_in_name", "name", Raw(b'"Broken \xff\xfe Coin"')),
    ("long_id", "id", "x" * 300),
    ("long_symbol", "symbol", "Y" * 100),
    ("long_name", "name", "Z" * 10_000),
    ("empty_id", "id", ""),
    ("symbol_object", "symbol", {"ticker": "EVL"}),  # a blank one is a coin without a ticker
    ("price_overflow", "price", Raw(b"1e400")),
    ("price_nan", "price", Raw(b"NaN")),
    ("price_negative", "price", -5),
    ("price_zero", "price", 0),
    ("price_text", "price", "12abc"),
    ("price_ambiguous_text", "price", "1,234"),
    ("price_object", "price", {"usd": 1}),
    ("price_missing", "price", None),
    ("date_future", "observed_at", "2099-01-01T00:00:00Z"),
    ("date_before_2009", "observed_at", "2001-09-09T01:46:40Z"),
    ("date_garbage", "observed_at", "yesterday-ish"),
    ("date_nul", "observed_at", "2026-01-01\u0000T00:00:00Z"),
]
CLASSES: tuple[str, ...] = tuple(name for name, _, _ in _CASES)


@dataclass(frozen=True, slots=True)
class HostileItem:
    kind: str
    body: bytes  # the raw JSON object
    source_asset_id: str | None  # its id, when the id itself is not what is broken


def hostile_items(vendor: str, template: dict[str, Any], tag: str = "h") -> list[HostileItem]:
    """One item per hostile class, from a good `template` item of `vendor`. Each gets an id of
    its own (`<tag>-<class>`) unless its id is what is broken, so none collides with a good one."""
    where = FIELDS[vendor]
    items = []
    for kind, field, value in _CASES:
        item = copy.deepcopy(template)
        own_id = f"{tag}-{kind.replace('_', '-')}"
        _set(item, where.id, own_id)
        _set(item, where.symbol, f"H{zlib.crc32(own_id.encode()) % 100_000}")
        _set(item, where.name, f"Hostile {kind}")
        items.append(
            HostileItem(
                kind,
                _dumps(item, getattr(where, field), value),
                None if field == "id" else own_id,
            )
        )
    return items


def random_hostile(
    vendor: str, templates: list[dict[str, Any]], count: int, rng: random.Random
) -> Iterator[HostileItem]:
    """`count` hostile items of random classes, from random templates (for the soak)."""
    for n in range(count):
        template = rng.choice(templates)
        options = hostile_items(vendor, template, tag=f"soak{n}")
        yield rng.choice(options)


def _dumps(item: dict[str, Any], path: str, value: Any) -> bytes:
    if not isinstance(value, Raw):
        _set(item, path, value)  # orjson writes control characters as \uXXXX escapes
        return orjson.dumps(item)
    placeholder = "\u2063hostile\u2063"
    _set(item, path, placeholder)
    return orjson.dumps(item).replace(orjson.dumps(placeholder), value)


def _set(item: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = item
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


# CSV lines: (class, the line). The header is `symbol,name,price_usd,market_cap_usd,
# volume_24h_usd,date`; good lines around them use point decimals, so `1,234` is proved.
CSV_HEADER = b"symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"
CSV_CASES: list[tuple[str, bytes]] = [
    ("nul_in_name", b"HNUL,Evil\x00Coin,1.5,100,10,2026-01-02\n"),
    ("cr_in_name", b'HCR,"Evil\rCoin",1.5,100,10,2026-01-02\n'),
    ("escape_in_name", b"HESC,\x1b[31mRed,1.5,100,10,2026-01-02\n"),
    ("invalid_utf8_in_name", b"HUTF,Broken \xff\xfe Coin,1.5,100,10,2026-01-02\n"),
    ("long_symbol", b"Y" * 100 + b",Long Symbol Coin,1.5,100,10,2026-01-02\n"),
    ("long_name", b"HLNG," + b"Z" * 10_000 + b",1.5,100,10,2026-01-02\n"),
    ("price_text", b"HTXT,Text Price Coin,12abc,100,10,2026-01-02\n"),
    ("price_negative", b"HNEG,Negative Coin,-5,100,10,2026-01-02\n"),
    ("price_missing", b"HMIS,Missing Price Coin,N/A,100,10,2026-01-02\n"),
    ("price_overflow", b"HOVF,Overflow Coin,1e400,100,10,2026-01-02\n"),
    ("date_future", b"HFUT,Future Coin,1.5,100,10,2099-01-01\n"),
    ("date_before_2009", b"HOLD,Old Coin,1.5,100,10,2001-09-09\n"),
    ("date_garbage", b"HDAT,Bad Date Coin,1.5,100,10,yesterday\n"),
    ("too_many_fields", b"HMNY,Many Fields Coin,1.5,100,10,2026-01-02,extra\n"),
    ("too_few_fields", b"HFEW,Few Fields Coin,1.5\n"),
]
