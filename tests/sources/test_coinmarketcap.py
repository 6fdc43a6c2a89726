"""CoinMarketCap: the real recorded listing normalizes; the source against its fake over real
HTTP (paging, credits, key, limits, status errors); the whole run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import run_source
from kasparro.fakes.faults import Fault
from kasparro.fakes.server import FakeUpstreams
from kasparro.load.loader import read_checkpoint
from kasparro.models import RawRecord, UnifiedRecord
from kasparro.quality.drift import detect
from kasparro.sources.base import Source, SourceError, UpstreamAuthError, UpstreamUnavailable
from kasparro.sources.coinmarketcap import EXPECTED_SHAPE, CoinMarketCapSource, normalize
from tests.helpers import count, settings_for

KEY = "1b2c3d4e-0000-4000-8000-cmc-test-key"
SAMPLE = "coinmarketcap_listings-latest_Visyntro-cryptotracker_2024-09-17.json"
PATH = "/v1/cryptocurrency/listings/latest"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=450) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstreams) -> Iterator[None]:
    state = fake.state
    state.clear_faults()
    state.coinmarketcap_key, state.coinmarketcap_credits = KEY, None
    state.coinmarketcap_credits_used, state.coinmarketcap_rate_limit = 0, None
    with state.lock:
        state.requests.clear()
    yield
    state.clear_faults()


def cmc_settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "coinmarketcap_enabled": True,
        "coinmarketcap_api_key": KEY,
        "coinmarketcap_base_url": fake.coinmarketcap_url,
        "coinmarketcap_per_page": 200,
        "coinmarketcap_max_pages": None,
        "coinmarketcap_rate_limit_per_minute": 10_000,
        **overrides,
    }
    return settings_for(database_url, **values)


def crawl(source: Source) -> tuple[list[str], SourceError | None]:
    """The labels of the batches fetched, and the error that stopped the crawl (if one did)."""
    labels: list[str] = []
    try:
        for batch in source.fetch(None):
            labels.append(batch.label)
    except SourceError as exc:
        return labels, exc
    finally:
        source.close()
    return labels, None


def sample_items(recorded_samples: Path) -> list[dict[str, Any]]:
    body = json.loads((recorded_samples / SAMPLE).read_text(encoding="utf-8"))
    assert body["status"]["error_code"] == 0
    items: list[dict[str, Any]] = body["data"]
    return items


def test_the_recorded_listing_normalizes_without_drift(recorded_samples: Path) -> None:
    items = sample_items(recorded_samples)
    results = [normalize(RawRecord.of("coinmarketcap", item)) for item in items]
    assert all(isinstance(r, UnifiedRecord) for r in results), results
    bitcoin = results[0]
    assert isinstance(bitcoin, UnifiedRecord)
    assert (bitcoin.source_asset_id, bitcoin.symbol, bitcoin.name) == ("1", "BTC", "Bitcoin")
    assert bitcoin.price_usd == pytest.approx(61137.27250669717)
    assert bitcoin.market_cap_usd == pytest.approx(1207787238218.8198)
    assert bitcoin.volume_24h_usd == pytest.approx(34883015919.87704)
    assert bitcoin.observed_at.isoformat() == "2024-09-17T15:59:00+00:00"
    assert detect("coinmarketcap", items, schema=EXPECTED_SHAPE).events == ()


def test_an_item_without_a_usd_quote_or_with_a_string_id_is_refused(
    recorded_samples: Path,
) -> None:
    item = sample_items(recorded_samples)[0]
    no_quote = normalize(RawRecord.of("coinmarketcap", {**item, "quote": {"EUR": {}}}))
    assert not isinstance(no_quote, UnifiedRecord)
    assert no_quote.reason == "quote.USD: missing"
    symbol_id = normalize(RawRecord.of("coinmarketcap", {**item, "id": "BTC"}))
    assert not isinstance(symbol_id, UnifiedRecord)  # never keyed on anything but the int id


def test_a_key_is_required_before_any_request(fake: FakeUpstreams, tmp_path: Path) -> None:
    settings = cmc_settings(f"sqlite:///{tmp_path / 'k.db'}", fake, coinmarketcap_api_key=None)
    with pytest.raises(UpstreamAuthError, match="COINMARKETCAP_API_KEY"):
        CoinMarketCapSource.from_settings(settings)
    assert fake.state.count("coinmarketcap", PATH) == 0


def test_limits_beyond_the_plan_are_refused_as_settings(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="coinmarketcap_per_page"):
        settings_for(f"sqlite:///{tmp_path / 'k.db'}", coinmarketcap_per_page=5001)


def test_pages_credits_and_retries_against_the_fake(fake: FakeUpstreams, tmp_path: Path) -> None:
    fake.state.add_faults([Fault("rate_limit", vendor="coinmarketcap", page=2, retry_after=0)])
    fake.state.add_faults([Fault("server_error", vendor="coinmarketcap", page=3, status=200)])
    source = CoinMarketCapSource.from_settings(cmc_settings(f"sqlite:///{tmp_path}/k.db", fake))
    try:
        batches = list(source.fetch(None))
    finally:
        source.close()
    listed = fake.universe.coingecko_items()
    assert [b.label for b in batches] == ["page 1", "page 2", "page 3"]
    assert sum(len(b.records) for b in batches) == len(listed) == 435
    # 200 + 200 + 35 coins: 1 credit each; the 429 and the HTTP 200 with error 500 cost none
    # and were retried.
    assert batches[-1].cursor == {
        "next_page": 1,
        "pages_in_last_crawl": 3,
        "credits_in_last_crawl": 3,
    }
    assert fake.state.coinmarketcap_credits_used == 3
    assert fake.state.count("coinmarketcap", PATH) == 5


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"coinmarketcap_key": "another-key-entirely"}, "1001"),
        ({"coinmarketcap_credits": 2}, "1010"),  # the monthly allowance runs out on page 3
    ],
)
def test_key_and_allowance_errors_fail_at_once(
    fake: FakeUpstreams, tmp_path: Path, change: dict[str, Any], code: str
) -> None:
    for attribute, value in change.items():
        setattr(fake.state, attribute, value)
    source = CoinMarketCapSource.from_settings(cmc_settings(f"sqlite:///{tmp_path}/k.db", fake))
    fetched, failure = crawl(source)
    assert isinstance(failure, UpstreamAuthError)
    assert f"error {code}" in str(failure)
    assert KEY not in str(failure)
    assert fake.state.count("coinmarketcap", PATH) == len(fetched) + 1  # no retry


def test_over_the_per_minute_limit_it_retries_then_names_error_1008(
    fake: FakeUpstreams, tmp_path: Path
) -> None:
    fake.state.coinmarketcap_rate_limit = 1  # a minute's window: the retry cannot clear it
    source = CoinMarketCapSource.from_settings(cmc_settings(f"sqlite:///{tmp_path}/k.db", fake))
    fetched, failure = crawl(source)
    assert isinstance(failure, UpstreamUnavailable)
    assert "error 1008" in str(failure)
    assert fetched == ["page 1"]
    assert fake.state.count("coinmarketcap", PATH) == 3  # page 2 tried twice (HTTP_MAX_ATTEMPTS)


def test_check_asks_for_one_coin(fake: FakeUpstreams, tmp_path: Path) -> None:
    source = CoinMarketCapSource.from_settings(cmc_settings(f"sqlite:///{tmp_path}/k.db", fake))
    try:
        assert source.check().status == "ok"
        fake.state.coinmarketcap_key = "rotated-key-not-ours"
        check = source.check()
    finally:
        source.close()
    assert (check.status, KEY in check.detail) == ("error", False)
    assert "1001" in check.detail
    assert fake.state.coinmarketcap_credits_used == 1


def test_a_run_on_both_databases_is_idempotent_and_resumes(
    fake: FakeUpstreams, database_url: str, engine: Engine
) -> None:
    settings = cmc_settings(database_url, fake)
    fake.state.add_faults([Fault("html", vendor="coinmarketcap", page=2, times=2)])
    failed = run_source(engine, settings, "coinmarketcap", trigger="test")
    assert failed.status == "failed", failed
    with engine.connect() as conn:
        assert read_checkpoint(conn, "coinmarketcap") == {"next_page": 2, "credits": 1}
    resumed = run_source(engine, settings, "coinmarketcap", trigger="test")
    assert resumed.status == "success", resumed
    listed = fake.universe.coingecko_items()
    no_price = sum(1 for item in listed if item["current_price"] is None)
    assert resumed.records_processed == len(listed) - 200
    assert count(engine, schema.asset_sources) == len(listed) - no_price
    with engine.connect() as conn:
        assert read_checkpoint(conn, "coinmarketcap") == {
            "next_page": 1,
            "pages_in_last_crawl": 3,
            "credits_in_last_crawl": 3,
        }
    history = count(engine, schema.price_history)
    again = run_source(engine, settings, "coinmarketcap", trigger="test")
    assert again.status == "success"
    assert (again.records_loaded, count(engine, schema.price_history)) == (0, history)
