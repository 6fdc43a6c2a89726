"""Drift detection and anomaly rules as pure functions, on real recorded payloads."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kasparro.quality.anomalies import RunFigures, compare_run, price_outliers
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


def test_price_outliers_need_a_majority() -> None:
    prices = {
        "bitcoin": {"coingecko": 80_000, "coinpaprika": 80_500, "csv": 95_000},
        "solana": {"coingecko": 94, "coinpaprika": 94.5},
        "tether": {"coingecko": 1.0, "coinpaprika": 1.3},
    }
    found = price_outliers(prices, "csv", 0.1)
    assert [(a.kind, a.asset_id) for a in found] == [("price_outlier", "bitcoin")]
    blamed = price_outliers(prices, "coingecko", 0.1)
    assert [(a.kind, a.asset_id) for a in blamed] == [("price_disagreement", "tether")]
    (pair,) = price_outliers(prices, "coinpaprika", 0.1)
    assert (pair.kind, pair.asset_id) == ("price_disagreement", "tether")
