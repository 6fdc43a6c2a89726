"""Normalization and error classification of the two API sources, on real recorded payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.sources import coingecko, coinpaprika
from kasparro.sources.base import BadPayload, UpstreamAuthError, UpstreamUnavailable
from kasparro.sources.http import RetryAfter

CG_SAMPLES = [
    "coingecko_markets_madjin-daily-crypto.json",
    "coingecko_markets_madjin-daily-crypto_2026-01-13_dupsymbols.json",
    "coingecko_markets_madjin-daily-crypto_2024-09-05_nullrank.json",
    "coingecko_markets_Eyupkosee-crypto_data.json",
    "coingecko_markets_rciminera-Crypto-Pricing.json",
]
PAPRIKA_SAMPLE = "coinpaprika_tickers_K1intNyaenya-crypto-paprika_EXCERPT.json"


@pytest.mark.parametrize("name", CG_SAMPLES)
def test_every_real_coingecko_item_normalizes(recorded_samples: Path, name: str) -> None:
    items = json.loads((recorded_samples / name).read_text())
    results = [coingecko.normalize(RawRecord.of("coingecko", item)) for item in items]
    assert all(isinstance(r, UnifiedRecord) for r in results), [
        r.reason for r in results if isinstance(r, Rejection)
    ]
    records = [r for r in results if isinstance(r, UnifiedRecord)]
    assert len({r.source_asset_id for r in records}) == len(items)  # keyed on id, not symbol
    assert all(r.symbol == r.symbol.upper() and r.observed_at.tzinfo is UTC for r in records)


def test_coingecko_fields_map_exactly(recorded_samples: Path) -> None:
    items = json.loads((recorded_samples / CG_SAMPLES[0]).read_text())
    bitcoin = coingecko.normalize(RawRecord.of("coingecko", items[0]))
    assert isinstance(bitcoin, UnifiedRecord)
    assert (bitcoin.source_asset_id, bitcoin.symbol, bitcoin.name) == ("bitcoin", "BTC", "Bitcoin")
    assert bitcoin.price_usd == 76134
    assert bitcoin.market_cap_usd == 1525711563723
    assert bitcoin.volume_24h_usd == 43249932397
    assert bitcoin.observed_at == datetime(2026, 4, 30, 2, 29, 6, 506000, tzinfo=UTC)


def test_coingecko_tiny_prices_in_e_notation_survive(recorded_samples: Path) -> None:
    items = json.loads((recorded_samples / CG_SAMPLES[0]).read_text())
    pepe = next(i for i in items if i["id"] == "pepe")
    record = coingecko.normalize(RawRecord.of("coingecko", pepe))
    assert isinstance(record, UnifiedRecord)
    assert 0 < record.price_usd < 1e-4


def test_zero_width_characters_are_stripped_from_names(recorded_samples: Path) -> None:
    items = json.loads((recorded_samples / CG_SAMPLES[0]).read_text())
    stable = next(i for i in items if i["id"] == "stable-2")
    record = coingecko.normalize(RawRecord.of("coingecko", stable))
    assert isinstance(record, UnifiedRecord)
    assert record.name == "Stable"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"current_price": None}, "price_usd"),
        ({"current_price": 0}, "price_usd"),
        ({"current_price": "abc"}, "not a number"),
        ({"last_updated": None}, "not a timestamp"),
        ({"id": ""}, "source_asset_id"),
        ({"market_cap": -5}, "market_cap_usd"),
    ],
)
def test_bad_coingecko_items_are_rejected_with_a_reason(
    recorded_samples: Path, change: dict[str, object], reason: str
) -> None:
    item = {**json.loads((recorded_samples / CG_SAMPLES[0]).read_text())[0], **change}
    result = coingecko.normalize(RawRecord.of("coingecko", item))
    assert isinstance(result, Rejection)
    assert reason in result.reason


def test_every_real_coinpaprika_item_normalizes(recorded_samples: Path) -> None:
    items = json.loads((recorded_samples / PAPRIKA_SAMPLE).read_text())
    results = [coinpaprika.normalize(RawRecord.of("coinpaprika", item)) for item in items]
    records = [r for r in results if isinstance(r, UnifiedRecord)]
    assert len(records) == len(items)
    btc = records[0]
    assert (btc.source_asset_id, btc.symbol, btc.price_usd) == (
        "btc-bitcoin",
        "BTC",
        80586.96239313127,
    )
    assert btc.market_cap_usd == 1614057090074
    assert btc.observed_at == datetime(2026, 5, 13, 11, 26, 15, tzinfo=UTC)


def test_coinpaprika_empty_strings_mean_absent_but_a_price_is_required(
    recorded_samples: Path,
) -> None:
    item = json.loads((recorded_samples / PAPRIKA_SAMPLE).read_text())[0]
    quotes = {**item["quotes"]["USD"], "market_cap": "", "volume_24h": None}
    record = coinpaprika.normalize(RawRecord.of("coinpaprika", {**item, "quotes": {"USD": quotes}}))
    assert isinstance(record, UnifiedRecord)
    assert record.market_cap_usd is None and record.volume_24h_usd is None
    no_price = {**item, "quotes": {"USD": {**quotes, "price": ""}}}
    rejected = coinpaprika.normalize(RawRecord.of("coinpaprika", no_price))
    assert isinstance(rejected, Rejection)
    assert "price_usd" in rejected.reason
    no_quotes = coinpaprika.normalize(RawRecord.of("coinpaprika", {**item, "quotes": {}}))
    assert isinstance(no_quotes, Rejection) and "quotes.USD" in no_quotes.reason


def _response(
    status: int, body: object | str, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return httpx.Response(status, content=content.encode(), headers=headers or {})


def test_coingecko_error_shapes_are_classified(recorded_samples: Path) -> None:
    rate = _response(
        429,
        {"status": {"error_code": 429, "error_message": "You've exceeded the Rate Limit."}},
        {"retry-after": "7"},
    )
    error = coingecko.classify(rate)
    assert isinstance(error, RetryAfter) and error.retry_after == 7
    missing_key = _response(
        401, {"status": {"timestamp": "x", "error_code": 10002, "error_message": "API Key Missing"}}
    )
    assert isinstance(coingecko.classify(missing_key), UpstreamAuthError)
    wrong_host = _response(
        400, {"timestamp": "x", "error_code": 10011, "status": {"error_message": "change root URL"}}
    )
    error = coingecko.classify(wrong_host)
    assert isinstance(error, UpstreamAuthError) and "10011" in str(error)
    outage = _response(
        403,
        (recorded_samples / "coingecko_error403_madjin-daily-crypto_2023-03-30.json").read_text(),
    )
    assert isinstance(coingecko.classify(outage), UpstreamUnavailable)
    for html in ("<html><title>Access denied</title></html>", "error code: 1015"):
        assert isinstance(coingecko.classify(_response(403, html)), UpstreamUnavailable)
    assert isinstance(coingecko.classify(_response(404, {"error": "Not found"})), BadPayload)
    assert coingecko.classify(_response(200, [])) is None


def test_coinpaprika_error_bodies_are_classified() -> None:
    assert isinstance(
        coinpaprika.classify(_response(429, {"error": "you have reached maximum request limit"})),
        UpstreamUnavailable,
    )
    for status in (402, 403):
        assert isinstance(
            coinpaprika.classify(_response(status, {"error": "x"})), UpstreamAuthError
        )
    assert isinstance(
        coinpaprika.classify(_response(502, "<html>Bad gateway</html>")), UpstreamUnavailable
    )
    assert isinstance(coinpaprika.classify(_response(404, {"error": "id not found"})), BadPayload)
