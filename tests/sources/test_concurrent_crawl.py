"""The concurrent paged crawl against fakes that enforce the plan's rate limit over real HTTP:
pages handed on in order, the limit never exceeded, a 429's Retry-After slowing every request
down, bounded overshoot past the last page, and a crash mid-crawl resumed with no duplicate and
no gap on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import run_source
from kasparro.fakes.faults import Fault
from kasparro.fakes.server import FakeUpstreams
from kasparro.load.loader import read_checkpoint
from kasparro.sources.base import Batch
from kasparro.sources.coincap import CoinCapSource
from kasparro.sources.coingecko import CoinGeckoSource
from kasparro.sources.coinmarketcap import CoinMarketCapSource
from kasparro.sources.paging import PagedCrawl
from tests.helpers import count, settings_for

COINS, PER_PAGE, IN_FLIGHT = 1_950, 100, 8
PER_MINUTE = 600  # enforced by the fakes as 10 per second: a burst would be refused
MARKETS = "/api/v3/coins/markets"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    # Pages take longer to answer than the limit's interval: only requests in flight together
    # can keep up with the limit.
    with FakeUpstreams(coins=COINS, rate_window_seconds=1.0, page_seconds=0.2) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstreams) -> Iterator[None]:
    state = fake.state
    state.clear_faults()
    # Requests a previous crawl sent past its last page may still be being answered.
    for _ in range(100):
        if state.pages_in_flight == 0:
            break
        time.sleep(0.05)
    state.coingecko_rate_limit = state.coinmarketcap_rate_limit = PER_MINUTE
    state.coincap_rate_limit = PER_MINUTE
    with state.lock:
        state.requests.clear()
        state.log.clear()
        state.rate_limited.clear()
        state._calls.clear()
        state.peak_pages_in_flight = 0
    yield
    state.clear_faults()


def coingecko_pages(fake: FakeUpstreams) -> list[str]:
    """The labels of every CoinGecko page the fake lists (the last one short)."""
    pages = len(fake.universe.coingecko_items()) // PER_PAGE + 1
    return [f"page {n}" for n in range(1, pages + 1)]


def crawl_settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **fake.settings(),
        "coingecko_enabled": True,
        "coingecko_per_page": PER_PAGE,
        "coingecko_max_pages": 1_000,
        "coingecko_rate_limit_per_minute": PER_MINUTE,
        "coinmarketcap_per_page": PER_PAGE,
        "coinmarketcap_max_pages": 1_000,
        "coinmarketcap_rate_limit_per_minute": PER_MINUTE,
        "coincap_per_page": PER_PAGE,
        "coincap_rate_limit_per_minute": PER_MINUTE,
        "http_max_in_flight": IN_FLIGHT,
        **overrides,
    }
    return settings_for(database_url, **values)


def pages_requested(fake: FakeUpstreams, vendor: str) -> list[int]:
    """The page of each data request, in the order the fake received them."""
    pages: list[int] = []
    for entry in list(fake.state.log):
        if entry["vendor"] != vendor or "/assets/" in entry["path"] or "ping" in entry["path"]:
            continue
        query = {k: int(v[0]) for k, v in parse_qs(entry["query"]).items() if v[0].isdigit()}
        if "page" in query:
            pages.append(query["page"])
        elif "offset" in query:
            pages.append(query["offset"] // query["limit"] + 1)
        else:
            pages.append((query["start"] - 1) // query["limit"] + 1)
    return pages


SOURCES = {
    "coingecko": CoinGeckoSource,
    "coinmarketcap": CoinMarketCapSource,
    "coincap": CoinCapSource,
}


def crawl(fake: FakeUpstreams, vendor: str, tmp_path: Any, in_flight: int) -> list[Batch]:
    settings = crawl_settings(f"sqlite:///{tmp_path}/k.db", fake, http_max_in_flight=in_flight)
    source = SOURCES[vendor].from_settings(settings)
    try:
        return list(source.fetch(None))
    finally:
        source.close()


def reset_counts(fake: FakeUpstreams) -> None:
    with fake.state.lock:
        fake.state.log.clear()
        fake.state.peak_pages_in_flight = 0


@pytest.mark.parametrize("vendor", sorted(SOURCES))
def test_pages_come_in_order_within_the_limit_with_several_in_flight(
    fake: FakeUpstreams, vendor: str, tmp_path: Any
) -> None:
    one_by_one = crawl(fake, vendor, tmp_path, in_flight=1)
    pages = len(one_by_one)
    assert pages > 10
    assert pages_requested(fake, vendor) == list(range(1, pages + 1))
    assert fake.state.peak_pages_in_flight == 1
    reset_counts(fake)

    batches = crawl(fake, vendor, tmp_path, in_flight=IN_FLIGHT)
    assert [b.label for b in batches] == [f"page {n}" for n in range(1, pages + 1)]
    assert [b.cursor for b in batches] == [b.cursor for b in one_by_one]
    assert [r.payload for b in batches for r in b.records] == [
        r.payload for b in one_by_one for r in b.records
    ]
    assert fake.state.rate_limited[vendor] == 0  # the limit was never exceeded
    assert fake.state.peak_pages_in_flight >= 2  # and it was kept up with concurrently
    requested = pages_requested(fake, vendor)
    assert sorted(set(requested)) == sorted(requested)  # no page fetched twice
    overshoot = [page for page in requested if page > pages]
    assert len(overshoot) <= IN_FLIGHT - 1  # bounded: the pages already in flight, no more


def test_a_wrong_key_costs_one_request_not_one_per_slot(fake: FakeUpstreams, tmp_path: Any) -> None:
    source = CoinCapSource.from_settings(crawl_settings(f"sqlite:///{tmp_path}/k.db", fake))
    fake.state.coincap_key = "f" * 64  # the fake now knows another key than the one sent
    try:
        with pytest.raises(Exception, match="HTTP 401"):
            list(source.fetch(None))
        source.close()
    finally:
        fake.state.coincap_key = None
    assert pages_requested(fake, "coincap") == [1]


def test_a_retry_after_holds_back_every_request_in_flight(
    fake: FakeUpstreams, tmp_path: Any
) -> None:
    fake.state.add_faults([Fault("rate_limit", vendor="coingecko", page=6, retry_after=2)])
    source = CoinGeckoSource.from_settings(crawl_settings(f"sqlite:///{tmp_path}/k.db", fake))
    try:
        labels = [batch.label for batch in source.fetch(None)]
    finally:
        source.close()
    assert labels == coingecko_pages(fake)
    log = [e for e in fake.state.log if e["path"] == MARKETS]
    refused_at = next(e["at"] for e in log if e["query"].endswith("page=6"))
    # At 10 requests a second, ~18 would have arrived in the 2 s the upstream asked for; only
    # those already sent when the 429 came back may still arrive.
    during = [e for e in log if refused_at < e["at"] < refused_at + 1.8]
    assert len(during) <= 2, during
    assert fake.state.rate_limited["coingecko"] == 0


def test_a_crawl_stopped_mid_way_resumes_with_no_duplicate_and_no_gap(
    fake: FakeUpstreams, database_url: str, engine: Engine
) -> None:
    settings = crawl_settings(database_url, fake)
    # Page 7 fails twice (HTTP_MAX_ATTEMPTS is 2 here) while later pages are already in flight.
    fake.state.add_faults([Fault("server_error", vendor="coingecko", page=7, times=2)])
    failed = run_source(engine, settings, "coingecko", trigger="test")
    assert (failed.status, failed.failure_point) == ("failed", "fetch after page 6"), failed
    with engine.connect() as conn:
        assert read_checkpoint(conn, "coingecko") == {"next_page": 7}
    assert max(pages_requested(fake, "coingecko")) > 7  # pages past the failure were fetched
    resumed = run_source(engine, settings, "coingecko", trigger="test")
    assert resumed.status == "success", resumed
    listed = fake.universe.coingecko_items()
    assert failed.records_processed + resumed.records_processed == len(listed)  # each page once
    priced = {item["id"] for item in listed if item["current_price"] is not None}
    with engine.connect() as conn:
        loaded = set(
            conn.scalars(
                sa.select(schema.asset_sources.c.source_asset_id).where(
                    schema.asset_sources.c.source == "coingecko"
                )
            )
        )
    assert loaded == priced  # no gap
    assert count(engine, schema.price_history) == len(priced)  # no duplicate
    again = run_source(engine, settings, "coingecko", trigger="test")
    assert (again.status, count(engine, schema.price_history)) == ("success", len(priced))


def test_the_fetcher_never_requests_beyond_the_cap() -> None:
    requested: list[int] = []

    def fetch_page(number: int) -> list[int]:
        requested.append(number)
        return [number] * 10

    crawl = PagedCrawl(fetch_page, lambda items: len(items) < 10, last_page=5, max_in_flight=8)
    pages = list(crawl.pages(2))
    assert [(p.number, p.last) for p in pages] == [(2, False), (3, False), (4, False), (5, True)]
    assert sorted(requested) == [2, 3, 4, 5]
