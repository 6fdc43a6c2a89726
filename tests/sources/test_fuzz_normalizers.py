"""Fuzz: arbitrary values in every field of every source's items. A normalizer always answers a
record or a rejection (never raises), a record it accepts is storable, and the loader stores
whatever it is given, so one record can never fail a run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from kasparro.db.engine import write_transaction
from kasparro.identity.crosswalk import load_crosswalk
from kasparro.load.isolation import load_isolating
from kasparro.load.loader import store_raw
from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.sources.coingecko import normalize as coingecko
from kasparro.sources.coinpaprika import normalize as coinpaprika
from kasparro.sources.csv_files import normalize_row

# Any text (control characters and lone surrogates included), numbers of every kind, nothing.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
ANY_VALUE = st.one_of(
    ANY_TEXT,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
DATES = st.one_of(
    ANY_VALUE,
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
)

COINGECKO_FIELDS = ("id", "symbol", "name", "current_price", "market_cap", "total_volume")
PAPRIKA_FIELDS = ("id", "symbol", "name")
PAPRIKA_QUOTES = ("price", "market_cap", "volume_24h")
CSV_COLUMNS = ("symbol", "name", "price_usd", "market_cap_usd", "volume_24h_usd", "date")


@st.composite
def coingecko_items(draw: st.DrawFn) -> dict[str, Any]:
    item = {field: draw(ANY_VALUE) for field in COINGECKO_FIELDS}
    item["last_updated"] = draw(DATES)
    return item


@st.composite
def coinpaprika_items(draw: st.DrawFn) -> dict[str, Any]:
    item: dict[str, Any] = {field: draw(ANY_VALUE) for field in PAPRIKA_FIELDS}
    item["last_updated"] = draw(DATES)
    item["quotes"] = draw(
        st.one_of(
            ANY_VALUE,
            st.fixed_dictionaries(
                {"USD": st.fixed_dictionaries(dict.fromkeys(PAPRIKA_QUOTES, ANY_VALUE))}
            ),
        )
    )
    return item


@st.composite
def csv_rows(draw: st.DrawFn) -> dict[str, Any]:
    return {"row": {column: draw(ANY_TEXT) for column in CSV_COLUMNS}}


CASES: list[tuple[str, Callable[[RawRecord], UnifiedRecord | Rejection], Any]] = [
    ("coingecko", coingecko, coingecko_items()),
    ("coinpaprika", coinpaprika, coinpaprika_items()),
    ("csv", normalize_row, csv_rows()),
]


@pytest.mark.parametrize(("source", "normalize", "items"), CASES, ids=[c[0] for c in CASES])
def test_a_normalizer_answers_a_storable_record_or_a_rejection(
    source: str, normalize: Callable[[RawRecord], UnifiedRecord | Rejection], items: Any
) -> None:
    @settings(max_examples=300, deadline=None)
    @given(items)
    def check(item: dict[str, Any]) -> None:
        result = normalize(RawRecord.of(source, item))
        if isinstance(result, Rejection):
            assert result.reason and result.code
            return
        for text in (result.source_asset_id, result.symbol, result.name):
            assert text and not any(ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in text)
        assert result.price_usd > 0 and result.observed_at.tzinfo is not None

    check()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.one_of(coingecko_items(), coinpaprika_items()), min_size=1, max_size=8))
def test_the_loader_stores_whatever_the_normalizer_made_of_anything(
    engine: Engine, items: list[dict[str, Any]]
) -> None:
    raws = [RawRecord.of("coingecko", item) for item in items]
    results = [coingecko(raw) for raw in raws]
    store_raw(engine, "coingecko", raws, "fuzz-run")
    with write_transaction(engine) as conn:
        outcome, _ = load_isolating(
            conn,
            source="coingecko",
            records=[r.observation() for r in results if isinstance(r, UnifiedRecord)],
            rejections=[r for r in results if isinstance(r, Rejection)],
            crosswalk=load_crosswalk(None),
            run_id="fuzz-run",
            now=datetime.now(UTC),
        )
    assert outcome.processed == len(raws)  # every record loaded or quarantined, none lost
