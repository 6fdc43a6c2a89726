"""Binance: the real recorded bodies; the source against its fake over real HTTP (pair choice,
request weight, 429 then the 418 ban, 451, error codes); runs on SQLite and PostgreSQL with the
quotes converted through reference prices, or quarantined when there are none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.consensus.refresh import compute_now
from kasparro.db import schema
from kasparro.etl.runner import run_source
from kasparro.fakes.binance import state_of
from kasparro.fakes.server import FakeUpstreams
from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.quality.drift import detect
from kasparro.sources.base import SourceError, UpstreamUnavailable
from kasparro.sources.binance import (
    EXPECTED_SHAPE,
    BinanceSource,
    Refused,
    classify,
    normalize,
    trading_pairs,
)
from kasparro.sources.http import RetryAfter
from tests.helpers import settings_for

TICKER = "binance_ticker-24hr_johnthotekat-onchain-monitor_2024-03-10_EXCERPT.json"
INFO = "binance_exchangeInfo_preangelleo-Expenditure_bot_2023-12-11_EXCERPT.json"
RESTRICTED = "binance_error451-restricted-location_crypto-power-cryptopower_2024-05-09.json"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=300) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstreams) -> Iterator[None]:
    fake.state.plugins.pop("binance", None)
    fake.state.clear_faults()
    with fake.state.lock:
        fake.state.requests.clear()
    yield
    fake.state.plugins.pop("binance", None)


def binance_settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Settings:
    return settings_for(
        database_url,
        **{**fake.settings(), "binance_enabled": True, "binance_rate_limit_per_minute": 10_000},
        **overrides,
    )


def fetched(settings: Settings) -> list[RawRecord]:
    source = BinanceSource.from_settings(settings)
    try:
        return [raw for batch in source.fetch(None) for raw in batch.records]
    finally:
        source.close()


def test_the_recorded_bodies_normalize_without_drift(recorded_samples: Path) -> None:
    tickers = json.loads((recorded_samples / TICKER).read_text())
    pairs = trading_pairs(json.loads((recorded_samples / INFO).read_text()))
    payloads = [{"pair": pairs[t["symbol"]], "ticker": t} for t in tickers if t["symbol"] in pairs]
    assert [p["pair"]["symbol"] for p in payloads] == [
        "ETHBTC",
        "LTCBTC",
        "BNBBTC",
        "NEOBTC",
        "QTUMETH",
    ]
    records = [normalize(RawRecord.of("binance", p)) for p in payloads]
    eth = records[0]
    assert isinstance(eth, UnifiedRecord)
    # In the quote (BTC), as the ticker says; the load path converts it.
    assert (eth.symbol, eth.quote, eth.price_usd) == ("ETH", "BTC", 0.05692)
    assert eth.volume_24h_usd == pytest.approx(1159.60641773)
    assert eth.observed_at.isoformat() == "2024-03-10T02:47:00.116000+00:00"
    report = detect("binance", payloads, 0.9, schema=EXPECTED_SHAPE)
    assert not report.events


def test_a_delisted_pair_is_refused_not_read_as_zero(recorded_samples: Path) -> None:
    tickers = {t["symbol"]: t for t in json.loads((recorded_samples / TICKER).read_text())}
    pair = {"symbol": "BCCBTC", "status": "BREAK", "baseAsset": "BCC", "quoteAsset": "BTC"}
    result = normalize(RawRecord.of("binance", {"pair": pair, "ticker": tickers["BCCBTC"]}))
    assert isinstance(result, Rejection) and result.code == "stale"
    assert "BCCBTC" not in trading_pairs({"symbols": [pair]})


def test_the_recorded_451_body_is_a_refusal_never_retried(recorded_samples: Path) -> None:
    body = (recorded_samples / RESTRICTED).read_bytes()
    error = classify(httpx.Response(451, content=body))
    assert isinstance(error, Refused) and not error.retriable
    assert "restricted location" in str(error) and "BINANCE_ENABLED" in str(error)


def test_each_base_is_observed_through_its_preferred_pair(fake: FakeUpstreams) -> None:
    records = fetched(binance_settings("sqlite://", fake))
    by_base = {r.payload["pair"]["baseAsset"]: r.payload["pair"]["symbol"] for r in records}
    assert len(by_base) == len(records)  # one record per base asset
    # No USD pairs on binance.com: USDT first, then USDC, EUR, BTC.
    assert by_base["BTC"] == "BTCUSDT" and by_base["EUR"] == "EURUSDT"
    assert by_base["USDT"] == "USDTUSDC"
    assert "BCC" not in by_base  # not TRADING
    assert not any(s.endswith("TRY") for s in by_base.values())
    assert fake.state.count("binance", "/api/v3/ticker/24hr") == 1


def test_a_run_never_spends_weight_beyond_the_budget(fake: FakeUpstreams) -> None:
    state_of(fake.state).weight_limit = 150
    source = BinanceSource.from_settings(
        binance_settings("sqlite://", fake, binance_weight_limit_per_minute=150)
    )
    try:
        assert list(source.fetch(None))
        assert source.weight.used == 100  # from X-MBX-USED-WEIGHT-1M: 20 + 80
        with pytest.raises(UpstreamUnavailable, match="weight 120 of 150"):
            list(source.fetch(None))
    finally:
        source.close()
    # The second ticker call was never made: no 429, no ban.
    assert fake.state.count("binance", "/api/v3/ticker/24hr") == 1


def test_429_says_how_long_to_wait_and_calling_on_gets_a_418_ban(fake: FakeUpstreams) -> None:
    own = state_of(fake.state)
    own.weight_limit = 100
    own.spend(95)  # another program on this IP
    settings = binance_settings("sqlite://", fake, http_max_attempts=1)
    source = BinanceSource.from_settings(settings)
    try:
        with pytest.raises(RetryAfter, match="-1003") as limited:
            list(source.fetch(None))
        assert limited.value.retry_after is not None and limited.value.retry_after > 0
        # A caller that ignores the 429 is banned: 418, never retried.
        retrying = BinanceSource.from_settings(binance_settings("sqlite://", fake))
        with pytest.raises(Refused, match="IP banned until") as banned:
            list(retrying.fetch(None))
        retrying.close()
    finally:
        source.close()
    assert "418" in str(banned.value)
    assert fake.state.count("binance", "/api/v3/exchangeInfo") == 2  # one each, no retry


def test_451_fails_at_once(fake: FakeUpstreams) -> None:
    state_of(fake.state).restricted = True
    source = BinanceSource.from_settings(binance_settings("sqlite://", fake, http_max_attempts=3))
    with pytest.raises(Refused, match="restricted location"):
        list(source.fetch(None))
    assert source.check().status == "error"
    source.close()
    assert fake.state.count("binance", "/api/v3/exchangeInfo") == 1


def test_an_error_code_is_named(fake: FakeUpstreams) -> None:
    response = httpx.get(f"{fake.url('binance')}/api/v3/ticker/24hr", params={"symbol": "NOPE"})
    error = classify(response)
    assert isinstance(error, SourceError) and not error.retriable
    assert "code -1121" in str(error) and "Invalid symbol." in str(error)
    assert response.headers["x-mbx-used-weight-1m"] == "2"


def _history(engine: Engine, source: str) -> dict[str, float]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.asset_sources.c.symbol, schema.asset_sources.c.price_usd).where(
                schema.asset_sources.c.source == source
            )
        )
        return {str(symbol): float(price) for symbol, price in rows}


def _quarantined(engine: Engine, source: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.quarantine.c.reason_code, sa.func.count())
            .where(schema.quarantine.c.source == source)
            .group_by(schema.quarantine.c.reason_code)
        )
        return {str(code): int(n) for code, n in rows}


def test_quotes_convert_through_reference_prices_on_both_databases(
    fake: FakeUpstreams, database_url: str, engine: Engine
) -> None:
    settings = binance_settings(database_url, fake, coingecko_enabled=True)
    # Nothing to convert with yet: every record waits in quarantine, none is guessed.
    first = run_source(engine, settings, "binance", trigger="test")
    assert first.status == "success", first.error
    assert _history(engine, "binance") == {}
    assert _quarantined(engine, "binance") == {"no_quote_price": first.records_quarantined}
    # Another source's prices, then the reference prices of USDT, USDC, BTC.
    assert run_source(engine, settings, "coingecko", trigger="test").status == "success"
    compute_now(engine, settings)
    fake.universe.advance(60)
    second = run_source(engine, settings, "binance", trigger="test")
    assert second.status == "success", second.error
    prices = _history(engine, "binance")
    truth: dict[str, float] = {}
    for item in fake.universe.coingecko_items():  # the first of each ticker, as the fake lists
        if isinstance(item["current_price"], int | float):
            truth.setdefault(str(item["symbol"]).upper(), float(item["current_price"]))
    for symbol in ("BTC", "ETH", "USDC", "DOGE"):
        # The USDT price is the exchange's; the reference price of USDT is CoinGecko's: they
        # agree within the snapshot's move (the fake moves prices by at most 2%).
        assert prices[symbol] == pytest.approx(truth[symbol], rel=0.03), symbol
    again = run_source(engine, settings, "binance", trigger="test")
    assert again.records_loaded == 0
