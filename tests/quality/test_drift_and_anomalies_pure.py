"""Drift detection and anomaly rules as pure functions, on real recorded payloads."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kasparro.quality.anomalies import Quote, RunFigures, compare_run, price_outliers
from kasparro.quality.drift import detect


@pytest.fixture
def coingecko_items(recorded_samples: Path) -> list[dict[str, Any]]:
    return json.loads((recorded_samples / "coingecko_markets_madjin-daily-crypto.json").read_text())


@pytest.fixture
def paprika_items(recorded_samples: Path) -> list[dict[str, Any]]:
    name = "coinpaprika_tickers_K1intNyaenya-crypto-paprika_EXCERPT.json"
    return json.loads((recorded_samples / name).read_text())


def test_real_payloads_show_no_drift(coingecko_items: list, paprika_items: list) -> None:
    assert detect("coingecko", coingecko_items).events == ()
    assert detect("coinpaprika", paprika_items).events == ()


def test_a_confident_rename_is_applied(coingecko_items: list) -> None:
    renamed = [
        {("price" if k == "current_price" else k): v for k, v in i.items()} for i in coingecko_items
    ]
    report = detect("coingecko", renamed)
    (event,) = report.events
    assert (event.kind, event.field, event.action) == ("rename", "current_price", "applied")
    assert event.confidence >= 0.8
    assert report.apply(renamed[0])["current_price"] == coingecko_items[0]["current_price"]
    assert not report.degraded


def test_a_rename_whose_values_disagree_is_not_applied(coingecko_items: list) -> None:
    # The new field is a price-like number, but it is the 24h change, not the price.
    drifted = []
    for item in coingecko_items:
        changed = {k: v for k, v in item.items() if k != "current_price"}
        changed["price_now"] = item["price_change_24h"]
        drifted.append(changed)
    report = detect("coingecko", drifted)
    assert report.renames == {}
    assert report.degraded
    assert {e.kind for e in report.events} == {"missing", "new"}


def test_paprika_rename_missing_field_and_type_change(paprika_items: list) -> None:
    renamed = copy.deepcopy(paprika_items)
    for item in renamed:
        item["quotes"]["USD"]["last_price"] = item["quotes"]["USD"].pop("price")
    report = detect("coinpaprika", renamed)
    assert report.renames == {"quotes.USD.last_price": "quotes.USD.price"}

    missing = copy.deepcopy(paprika_items)
    for item in missing:
        del item["quotes"]["USD"]["price"]
    report = detect("coinpaprika", missing)
    assert [(e.kind, e.action) for e in report.events] == [("missing", "quarantined")]

    retyped = copy.deepcopy(paprika_items)
    for item in retyped:
        item["quotes"]["USD"]["price"] = {"value": item["quotes"]["USD"]["price"]}
    report = detect("coinpaprika", retyped)
    assert [(e.kind, e.field) for e in report.events] == [("type_change", "quotes.USD.price")]
    assert report.degraded


def test_csv_sources_have_no_fixed_schema() -> None:
    assert detect("csv", [{"row": {"a": "1"}}]).events == ()


def test_run_comparison_flags_drops_and_spikes() -> None:
    history = [RunFigures(1000, 10, 2000)] * 5
    assert (
        compare_run(
            "coingecko", RunFigures(990, 9, 2100), history, count_drop=0.5, duration_factor=3
        )
        == []
    )
    found = compare_run(
        "coingecko", RunFigures(300, 150, 9000), history, count_drop=0.5, duration_factor=3
    )
    assert [a.kind for a in found] == ["record_count_drop", "duration_spike", "error_spike"]
    assert (
        compare_run("coingecko", RunFigures(1, 0, 1), [], count_drop=0.5, duration_factor=3) == []
    )


def test_price_outliers_need_two_fresh_other_sources() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    month_ago = now - timedelta(days=30)
    prices = {
        "bitcoin": {
            "coingecko": Quote(80_000, now),
            "coinpaprika": Quote(80_500, now - timedelta(minutes=5)),
            "csv": Quote(95_000, now),
        },
        # Only one other source: nobody can say which of the two is right.
        "tether": {"coingecko": Quote(1.0, now), "coinpaprika": Quote(1.3, now)},
        # Two others, one of them a month old: not enough fresh ones to blame.
        "solana": {
            "coingecko": Quote(94, now),
            "coinpaprika": Quote(94.5, now),
            "csv": Quote(150, month_ago),
        },
    }
    hour = timedelta(hours=1)
    found = price_outliers(prices, "csv", 0.1, hour)
    assert [(a.kind, a.asset_id) for a in found] == [("price_outlier", "bitcoin")]
    assert price_outliers(prices, "coingecko", 0.1, hour) == []
    assert price_outliers(prices, "coinpaprika", 0.1, hour) == []
    # A price spike is caught once two fresh sources disagree with it.
    spiked = {"solana": {**prices["solana"], "csv": Quote(150, now)}}
    assert [a.asset_id for a in price_outliers(spiked, "csv", 0.1, hour)] == ["solana"]


def test_an_incremental_source_finding_nothing_new_is_not_a_drop() -> None:
    history = [RunFigures(44, 0, 500)] * 5
    nothing = RunFigures(0, 0, 100)
    assert (
        compare_run("csv", nothing, history, count_drop=0.5, duration_factor=3, incremental=True)
        == []
    )
    dropped = compare_run("coingecko", nothing, history, count_drop=0.5, duration_factor=3)
    assert [a.kind for a in dropped] == ["record_count_drop"]
