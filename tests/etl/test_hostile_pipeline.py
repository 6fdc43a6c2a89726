"""A hostile-input corpus, per source, through the whole pipeline on SQLite and PostgreSQL:
every hostile record ends in quarantine with a reason, every good record is loaded with its
value, and the run is never failed by one record."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.db import schema
from kasparro.etl.runner import run_source
from kasparro.fakes.hostile import CSV_CASES, CSV_HEADER, hostile_items
from kasparro.fakes.server import FakeUpstreams
from kasparro.models import RawRecord, UnifiedRecord
from kasparro.sources.registry import build_source
from tests.helpers import count, settings_for

CG_KEY = "cg-hostile-key-000"
# Where the corpus proves what it should (the others must be quarantined with some reason).
EXPECTED_CODES = {
    "nul_in_name": "unstorable_text",
    "cr_in_symbol": "unstorable_text",
    "escape_in_name": "unstorable_text",
    "lone_surrogate_in_name": "unstorable_text",
    "invalid_utf8_in_name": "unstorable_text",
    "long_symbol": "too_long",
    "long_name": "too_long",
    "date_future": "future_timestamp",
    "date_before_2009": "implausible_timestamp",
    "cr_in_name": "unstorable_text",
    "too_many_fields": "malformed_line",
    "too_few_fields": "malformed_line",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=120, coingecko_plan="pro", coingecko_key=CG_KEY) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _no_extra_items(fake: FakeUpstreams) -> Iterator[None]:
    fake.state.extra_items.clear()
    yield
    fake.state.extra_items.clear()


def _settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Any:
    return settings_for(
        database_url,
        coingecko_base_url=fake.coingecko_url,
        coingecko_api_plan="pro",
        coingecko_api_key=CG_KEY,
        coingecko_per_page=50,
        coinpaprika_base_url=fake.coinpaprika_url,
        etl_batch_size=40,
        **overrides,
    )


def _quarantine(engine: Engine, source: str) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(sa.select(schema.quarantine).where(schema.quarantine.c.source == source))
        )


def _served(engine: Engine, source: str) -> dict[str, float]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.asset_sources.c.source_asset_id, schema.asset_sources.c.price_usd
            ).where(schema.asset_sources.c.source == source)
        )
        return {said: price for said, price in rows}  # noqa: C416 (a Result has keys())


@pytest.mark.parametrize("vendor", ["coingecko", "coinpaprika"])
def test_hostile_items_are_quarantined_and_good_ones_loaded(
    database_url: str, engine: Engine, fake: FakeUpstreams, vendor: str
) -> None:
    universe = fake.universe
    items = universe.coingecko_items() if vendor == "coingecko" else universe.coinpaprika_items()
    # The fake's own universe carries a few records real vendors send that are refused already.
    normalize = build_source(settings_for("sqlite://"), vendor).normalize
    outcomes = [normalize(RawRecord.of(vendor, item)) for item in items]
    good = [r for r in outcomes if isinstance(r, UnifiedRecord)]
    refused_anyway = len(items) - len(good)
    hostile = hostile_items(vendor, items[0])
    fake.state.extra_items[vendor] = [h.body for h in hostile]
    settings = _settings(database_url, fake, **{f"{vendor}_enabled": True})

    result = run_source(engine, settings, vendor, trigger="test")

    assert result.status in ("success", "degraded"), result.error
    expected = {r.source_asset_id: r.price_usd for r in good}
    assert _served(engine, vendor) == expected  # exactly the good records, with their values
    quarantined = _quarantine(engine, vendor)
    assert len(quarantined) == len(hostile) + refused_anyway
    assert all(row.reason and row.reason_code for row in quarantined)
    code_of = {row.source_asset_id: row.reason_code for row in quarantined}
    for case in hostile:
        if case.kind in EXPECTED_CODES and case.source_asset_id is not None:
            assert code_of.get(case.source_asset_id) == EXPECTED_CODES[case.kind], case.kind
    for row in quarantined:  # stored bounded and escaped, whatever the record held
        assert row.source_asset_id is None or (
            len(row.source_asset_id) <= 200 and "\x00" not in row.source_asset_id
        )

    again = run_source(engine, settings, vendor, trigger="test")
    assert again.status in ("success", "degraded")
    assert len(_quarantine(engine, vendor)) == len(quarantined)  # no duplicate on a rerun
    assert count(engine, schema.price_history) == len(good)


def test_hostile_csv_lines_are_quarantined_and_good_ones_loaded(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    rng = random.Random(10)
    good = [
        f"G{n},Good Coin {n},{n + 1}.25,{(n + 1) * 1000},{n * 10},2026-01-02\n".encode()
        for n in range(30)
    ]
    lines = good + [line for _, line in CSV_CASES]
    rng.shuffle(lines)
    path = tmp_path / "hostile.csv"
    path.write_bytes(CSV_HEADER + b"".join(lines))
    settings = settings_for(
        database_url, csv_enabled=True, csv_path=path, etl_batch_size=7, csv_settle_seconds=0
    )

    result = run_source(engine, settings, "csv", trigger="test")

    assert result.status in ("success", "degraded"), result.error
    served = _served(engine, "csv")
    assert served == {f"g{n}-good-coin-{n}": n + 1.25 for n in range(30)}
    quarantined = _quarantine(engine, "csv")
    assert len(quarantined) == len(CSV_CASES)
    codes = sorted(row.reason_code for row in quarantined)
    assert "invalid" not in codes and "" not in codes
    for kind in ("date_future", "date_before_2009", "too_many_fields", "too_few_fields"):
        assert codes.count(EXPECTED_CODES[kind]) >= 1, kind
    assert codes.count("unstorable_text") >= 4  # NUL, CR, ESC, bytes that are not UTF-8
