"""OKX: the real recorded bodies; the source against its fake over real HTTP (pair choice through
the instruments' baseCcy/quoteCcy, the envelope's error codes with HTTP 200 or 4xx, the per-IP
limit and its 429); runs on SQLite and PostgreSQL with the quotes converted through reference
prices, a failed run rerun, and a rerun that changes nothing."""

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
from kasparro.fakes.faults import Fault
from kasparro.fakes.okx import SUSPENDED, OkxFake, state_of
from kasparro.fakes.server import FakeUpstreams
from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.quality.drift import detect
from kasparro.sources.base import BadPayload, UpstreamUnavailable
from kasparro.sources.http import RetryAfter
from kasparro.sources.okx import EXPECTED_SHAPE, OkxSettings, OkxSource, classify, normalize
from tests.helpers import settings_for

TICKER = "okx_ticker_BTC-USDT_okx-api-v5-course-fr_2026-08-22.json"
TOO_MANY = "okx_error429-rate-limit_okx-api-v5-course-fr_2026-08-22.json"
BTC_USDT = {"instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT", "state": "live"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=300) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstreams) -> Iterator[None]:
    fake.state.plugins.pop("okx", None)
    fake.state.clear_faults()
    with fake.state.lock:
        fake.state.requests.clear()
        fake.state.rate_limited.clear()
    yield
    fake.state.plugins.pop("okx", None)
    fake.state.clear_faults()


def okx_settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Settings:
    return settings_for(
        database_url,
        **{**fake.settings(), "okx_enabled": True, "okx_rate_limit_per_second": 1000},
        **overrides,
    )


def fetched(settings: Settings) -> list[RawRecord]:
    source = OkxSource.from_settings(settings)
    try:
        return [raw for batch in source.fetch(None) for raw in batch.records]
    finally:
        source.close()


def payload(**ticker: Any) -> dict[str, Any]:
    base = {"instType": "SPOT", "instId": "BTC-USDT", "last": "100", "vol24h": "2"}
    return {"instrument": BTC_USDT, "ticker": {**base, "ts": "1787416524064", **ticker}}


def test_the_recorded_body_normalizes_without_drift(recorded_samples: Path) -> None:
    body = json.loads((recorded_samples / TICKER).read_text())
    assert body["code"] == "0"
    (item,) = body["data"]
    recorded = {"instrument": BTC_USDT, "ticker": item}
    record = normalize(RawRecord.of("okx", recorded))
    assert isinstance(record, UnifiedRecord)
    # In the quote (USDT), as the ticker says; the load path converts it.
    assert (record.source_asset_id, record.symbol, record.quote) == ("BTC", "BTC", "USDT")
    assert record.price_usd == 77218.1
    assert record.volume_24h_usd == pytest.approx(652281908.20076346)
    assert record.observed_at.isoformat() == "2026-08-22T16:35:24.064000+00:00"
    assert not detect("okx", [recorded], 0.9, schema=EXPECTED_SHAPE).events


def test_what_cannot_be_read_with_certainty_is_refused() -> None:
    halted = normalize(RawRecord.of("okx", payload(vol24h="0")))
    assert isinstance(halted, Rejection) and halted.code == "stale"
    other = normalize(RawRecord.of("okx", payload(instId="ETH-USDT")))
    assert isinstance(other, Rejection) and "instId" in other.reason
    seconds = normalize(RawRecord.of("okx", payload(ts=1787416524)))
    assert isinstance(seconds, Rejection) and "ticker.ts" in seconds.reason
    garbled = normalize(RawRecord.of("okx", payload(last="77,218.1")))
    assert isinstance(garbled, Rejection) and "ticker.last" in garbled.reason
    unnamed = {"instrument": {**BTC_USDT, "baseCcy": ""}, "ticker": payload()["ticker"]}
    assert isinstance(normalize(RawRecord.of("okx", unnamed)), Rejection)
    assert isinstance(normalize(RawRecord.of("okx", {"ticker": {}})), Rejection)


def test_the_envelope_s_codes_are_classified(recorded_samples: Path) -> None:
    limited = classify(httpx.Response(429, content=(recorded_samples / TOO_MANY).read_bytes()))
    assert isinstance(limited, RetryAfter) and "50011" in str(limited)
    unknown = b'{"code":"51001","msg":"Instrument ID does not exist","data":[]}'
    refused = classify(httpx.Response(200, content=unknown))
    assert isinstance(refused, BadPayload) and not refused.retriable
    assert "Instrument ID does not exist" in str(refused)
    busy = classify(httpx.Response(503, content=b'{"code":"50001","msg":"","data":[]}'))
    assert isinstance(busy, UpstreamUnavailable) and busy.retriable
    edge = classify(httpx.Response(520, content=b"<html>error 520</html>"))
    assert isinstance(edge, UpstreamUnavailable)
    assert classify(httpx.Response(200, content=b'{"code":"0","msg":"","data":[]}')) is None


def test_the_fake_answers_errors_in_the_envelope(fake: FakeUpstreams) -> None:
    root = fake.url("okx")
    empty = httpx.get(f"{root}/api/v5/market/tickers")
    assert (empty.status_code, empty.json()["code"]) == (400, "50014")
    wrong = httpx.get(f"{root}/api/v5/market/tickers", params={"instType": "STOCK"})
    assert (wrong.status_code, wrong.json()["code"]) == (400, "51000")
    unknown = httpx.get(f"{root}/api/v5/market/ticker", params={"instId": "NOPE-USDT"})
    assert unknown.status_code == 200
    assert unknown.json() == {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
    one = httpx.get(f"{root}/api/v5/market/ticker", params={"instId": "BTC-USDT"}).json()
    assert [i["instId"] for i in one["data"]] == ["BTC-USDT"]


def test_each_base_is_observed_through_its_preferred_live_pair(fake: FakeUpstreams) -> None:
    records = fetched(okx_settings("sqlite://", fake))
    by_base = {r.payload["instrument"]["baseCcy"]: r.payload["instrument"] for r in records}
    assert len(by_base) == len(records) > 200  # one record per base asset
    # No USD pairs on okx.com: USDT first, then USDC, EUR, BTC; TRY never.
    assert by_base["BTC"]["instId"] == "BTC-USDT" and by_base["ETH"]["instId"] == "ETH-USDT"
    assert by_base["USDT"]["instId"] == "USDT-USDC"
    assert all(i["state"] == "live" for i in by_base.values())
    assert SUSPENDED.split("-")[0] not in by_base
    assert not any(i["quoteCcy"] == "TRY" for i in by_base.values())
    assert fake.state.count("okx", "/api/v5/market/tickers") == 1
    assert fake.state.count("okx", "/api/v5/public/instruments") == 1


def test_a_429_and_a_503_are_retried(fake: FakeUpstreams) -> None:
    fake.state.add_faults([Fault("rate_limit", vendor="okx"), Fault("server_error", vendor="okx")])
    records = fetched(okx_settings("sqlite://", fake, http_max_attempts=3))
    assert len(records) > 200
    assert fake.state.count("okx", "/api/v5/public/instruments") == 3  # two errors, the answer


def test_the_per_ip_limit_fails_the_run_when_retries_run_out(fake: FakeUpstreams) -> None:
    state_of(fake.state).requests_per_two_seconds = 1  # another program on this IP used the rest
    with pytest.raises(RetryAfter, match="50011"):
        fetched(okx_settings("sqlite://", fake, http_max_attempts=1))
    assert fake.state.count("okx", "/api/v5/market/tickers") == 1  # refused once, not retried
    assert fake.state.rate_limited["okx"] == 1


def test_the_default_pace_stays_within_the_documented_limit() -> None:
    # OKX: 20 requests per 2 s per IP (the fake enforces it); the limiter paces evenly below it.
    documented = OkxFake().requests_per_two_seconds
    assert documented is not None
    assert OkxSettings().rate_limit_per_second * 2 <= documented


def _history(engine: Engine) -> dict[str, float]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.asset_sources.c.symbol, schema.asset_sources.c.price_usd).where(
                schema.asset_sources.c.source == "okx"
            )
        )
        return {str(symbol): float(price) for symbol, price in rows}


def _quarantined(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.quarantine.c.reason_code, sa.func.count())
            .where(schema.quarantine.c.source == "okx")
            .group_by(schema.quarantine.c.reason_code)
        )
        return {str(code): int(n) for code, n in rows}


def test_a_run_on_both_databases_converts_quotes_recovers_and_is_idempotent(
    fake: FakeUpstreams, database_url: str, engine: Engine
) -> None:
    settings = okx_settings(database_url, fake, coingecko_enabled=True, http_max_attempts=2)
    # The upstream down for longer than the retries: the run fails, nothing half-loaded.
    fake.state.add_faults([Fault("server_error", vendor="okx", times=2)])
    failed = run_source(engine, settings, "okx", trigger="test")
    assert failed.status == "failed" and "50001" in (failed.error or "")
    assert _history(engine) == {} and _quarantined(engine) == {}
    # Nothing to convert USDT with yet: every record waits in quarantine, none is guessed.
    first = run_source(engine, settings, "okx", trigger="test")
    assert first.status == "success", first.error
    assert _history(engine) == {}
    assert _quarantined(engine) == {"no_quote_price": first.records_quarantined}
    assert run_source(engine, settings, "coingecko", trigger="test").status == "success"
    compute_now(engine, settings)
    fake.universe.advance(60)
    second = run_source(engine, settings, "okx", trigger="test")
    assert second.status == "success", second.error
    prices = _history(engine)
    truth: dict[str, float] = {}
    for item in fake.universe.coingecko_items():  # the first of each ticker, as the fake lists
        if isinstance(item["current_price"], int | float):
            truth.setdefault(str(item["symbol"]).upper(), float(item["current_price"]))
    for symbol in ("BTC", "ETH", "DOGE"):
        # The USDT price is the exchange's; USDT's reference price is CoinGecko's: they agree
        # within the snapshot's move (the fake moves prices by at most 2%).
        assert prices[symbol] == pytest.approx(truth[symbol], rel=0.03), symbol
    again = run_source(engine, settings, "okx", trigger="test")
    assert again.status == "success" and again.records_loaded == 0
