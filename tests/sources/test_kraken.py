"""Kraken: the real recorded bodies (legacy codes mapped through Assets' altnames); the source
against its fake over real HTTP (errors in the `error` array with HTTP 200, the throttle, partial
errors beside a result); runs on SQLite and PostgreSQL."""

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
from kasparro.db import schema
from kasparro.etl.runner import run_source
from kasparro.fakes.faults import Fault
from kasparro.fakes.kraken import state_of
from kasparro.fakes.server import FakeUpstreams
from kasparro.models import RawRecord, UnifiedRecord
from kasparro.quality.drift import detect
from kasparro.sources.base import BadPayload, UpstreamUnavailable
from kasparro.sources.http import RetryAfter
from kasparro.sources.kraken import EXPECTED_SHAPE, KrakenSource, classify, normalize, ticker_of
from tests.helpers import settings_for

ASSETS = "kraken_Assets_Horndev-Bitcoin-Exchange-APIs.NET_legacy-schema.json"
PAIRS = "kraken_AssetPairs_triplechoccookie-kraken-API_legacy-schema.json"
TICKER = "kraken_Ticker_Horndev-Bitcoin-Exchange-APIs.NET_legacy-2-element-a-b.json"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=300) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstreams) -> Iterator[None]:
    fake.state.plugins.pop("kraken", None)
    fake.state.clear_faults()
    with fake.state.lock:
        fake.state.requests.clear()
    yield
    fake.state.plugins.pop("kraken", None)
    fake.state.clear_faults()


def kraken_settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Settings:
    return settings_for(
        database_url,
        **{**fake.settings(), "kraken_enabled": True, "kraken_rate_limit_per_minute": 10_000},
        **overrides,
    )


def fetched(settings: Settings) -> list[RawRecord]:
    source = KrakenSource.from_settings(settings)
    try:
        return [raw for batch in source.fetch(None) for raw in batch.records]
    finally:
        source.close()


def response(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


def test_the_recorded_bodies_normalize_without_drift(recorded_samples: Path) -> None:
    assets = json.loads((recorded_samples / ASSETS).read_text())["result"]
    pair = json.loads((recorded_samples / PAIRS).read_text())["result"]["XXBTZEUR"]
    ticker = json.loads((recorded_samples / TICKER).read_text())["result"]["XXBTZEUR"]
    payload = {
        "time": 1420070400,
        "pair_key": "XXBTZEUR",
        "pair": {k: pair[k] for k in ("altname", "base", "quote")},
        "base": {"code": "XXBT", "altname": assets["XXBT"]["altname"]},
        "quote": {"code": "ZEUR", "altname": assets["ZEUR"]["altname"]},
        "ticker": ticker,
    }
    record = normalize(RawRecord.of("kraken", payload))
    assert isinstance(record, UnifiedRecord)
    # XXBT -> altname XBT -> BTC; priced in EUR, converted by the load path.
    assert (record.source_asset_id, record.symbol, record.quote) == ("XXBT", "BTC", "EUR")
    assert record.price_usd == 210.73129
    assert record.volume_24h_usd == pytest.approx(1008.09592889 * 208.09449)
    assert not detect("kraken", [payload], 0.9, schema=EXPECTED_SHAPE).events


def test_kraken_own_tickers_map_to_the_market_s() -> None:
    assert [ticker_of(a) for a in ("XBT", "XDG", "ETH", "usd")] == ["BTC", "DOGE", "ETH", "USD"]


def test_errors_in_the_error_array_are_classified() -> None:
    limited = classify(response({"error": ["EGeneral:Too many requests"]}))
    assert isinstance(limited, RetryAfter) and limited.retriable
    busy = classify(response({"error": ["EService:Unavailable"]}))
    assert isinstance(busy, UpstreamUnavailable)
    unknown = classify(response({"error": ["EQuery:Unknown asset pair"]}))
    assert isinstance(unknown, BadPayload) and "EQuery:Unknown asset pair" in str(unknown)
    # Errors about some pairs beside a result for the others: the result is read.
    partial = {"error": ["EQuery:Unknown asset pair"], "result": {"XXBTZUSD": {}}}
    assert classify(response(partial)) is None
    assert classify(response({"error": ["WGeneral:Deprecated"], "result": {}})) is None
    cloudflare = classify(httpx.Response(520, content=b"<html>error 520</html>"))
    assert isinstance(cloudflare, UpstreamUnavailable)


def test_an_unknown_pair_is_an_error_with_http_200(fake: FakeUpstreams) -> None:
    answer = httpx.get(f"{fake.url('kraken')}/0/public/Ticker", params={"pair": "XBTUSD,NOPE"})
    assert answer.status_code == 200
    assert answer.json() == {"error": ["EQuery:Unknown asset pair"]}
    one = httpx.get(f"{fake.url('kraken')}/0/public/Ticker", params={"pair": "XBTUSD"}).json()
    assert list(one["result"]) == ["XXBTZUSD"]


def test_each_base_is_observed_through_its_preferred_pair(fake: FakeUpstreams) -> None:
    records = fetched(kraken_settings("sqlite://", fake))
    by_code = {r.payload["base"]["code"]: r.payload["pair_key"] for r in records}
    assert len(by_code) == len(records)
    assert by_code["XXBT"] == "XXBTZUSD" and by_code["XETH"] == "XETHZUSD"
    assert by_code["ZEUR"] == "ZEURZUSD" and by_code["USDT"] == "USDTZUSD"
    doge = next(r for r in records if r.payload["base"]["code"] == "XXDG")
    result = normalize(doge)
    assert isinstance(result, UnifiedRecord)
    assert (result.symbol, result.quote) == ("DOGE", None)  # a USD pair: nothing to convert


def test_the_throttle_is_retried_and_partial_errors_are_read(fake: FakeUpstreams) -> None:
    fake.state.add_faults(
        [Fault("rate_limit", vendor="kraken"), Fault("server_error", vendor="kraken")]
    )
    state_of(fake.state).partial_errors = True
    records = fetched(kraken_settings("sqlite://", fake, http_max_attempts=3))
    assert len(records) > 200
    assert fake.state.count("kraken", "/0/public/Assets") == 3  # two errors, then the answer


def test_the_throttle_fails_the_run_when_retries_run_out(fake: FakeUpstreams) -> None:
    state_of(fake.state).calls_per_second = 1
    with pytest.raises(RetryAfter, match="EGeneral:Too many requests"):
        fetched(kraken_settings("sqlite://", fake, http_max_attempts=1))
    assert fake.state.count("kraken", "/0/public/Assets") == 1


def test_a_run_on_both_databases_loads_usd_pairs_and_is_idempotent(
    fake: FakeUpstreams, database_url: str, engine: Engine
) -> None:
    settings = kraken_settings(database_url, fake)
    first = run_source(engine, settings, "kraken", trigger="test")
    assert first.status in ("success", "degraded"), first.error
    with engine.connect() as conn:
        rows = dict(
            conn.execute(
                sa.select(schema.asset_sources.c.symbol, schema.asset_sources.c.price_usd).where(
                    schema.asset_sources.c.source == "kraken"
                )
            ).all()
        )
    btc = next(i["current_price"] for i in fake.universe.coingecko_items() if i["symbol"] == "btc")
    assert float(rows["BTC"]) == pytest.approx(btc, rel=1e-5)  # USD pair: as traded
    assert float(rows["EUR"]) == pytest.approx(1.08)  # the fakes' euro, from ZEURZUSD
    again = run_source(engine, settings, "kraken", trigger="test")
    assert again.records_loaded == 0 and again.records_unchanged == first.records_loaded
