"""CoinCap: the real recorded bodies; the source against its fake over real HTTP (paging, key,
limits, errors, the retired host's notice); the whole run on SQLite and PostgreSQL."""

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
from kasparro.sources.base import (
    BadPayload,
    Source,
    SourceError,
    UpstreamAuthError,
    UpstreamUnavailable,
)
from kasparro.sources.coincap import EXPECTED_SHAPE, CoinCapSource, normalize
from tests.helpers import count, settings_for

KEY = "c0ffee" * 10 + "beef"  # 64 hex characters, as CoinCap's keys
SAMPLE = "coincap_v2-assets_mr-pmillz-coinmon-go_2021-10-27.json"
NOTICE = "coincap_v2-assets_deprecation-notice_x-cmd-x-cmd_2025-04-16.json"
PATH = "/v3/assets"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=450) as upstreams:
        yield upstreams


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstreams) -> Iterator[None]:
    fake.state.clear_faults()
    fake.state.coincap_key, fake.state.coincap_rate_limit = KEY, None
    with fake.state.lock:
        fake.state.requests.clear()
    yield
    fake.state.clear_faults()


def coincap_settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "coincap_enabled": True,
        "coincap_api_key": KEY,
        "coincap_base_url": fake.coincap_url,
        "coincap_per_page": 200,
        "coincap_rate_limit_per_minute": 10_000,
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


def test_the_recorded_body_normalizes_without_drift(recorded_samples: Path) -> None:
    body = json.loads((recorded_samples / SAMPLE).read_text(encoding="utf-8"))
    payloads = [{"data": item, "timestamp": body["timestamp"]} for item in body["data"]]
    results = [normalize(RawRecord.of("coincap", p)) for p in payloads]
    assert all(isinstance(r, UnifiedRecord) for r in results), results
    bitcoin = results[0]
    assert isinstance(bitcoin, UnifiedRecord)
    assert (bitcoin.source_asset_id, bitcoin.symbol, bitcoin.name) == ("bitcoin", "BTC", "Bitcoin")
    assert bitcoin.price_usd == pytest.approx(60310.6888208343493939)
    assert bitcoin.market_cap_usd == pytest.approx(1137176492787.6108)
    assert bitcoin.observed_at.isoformat() == "2021-10-27T00:05:52.930000+00:00"
    assert detect("coincap", payloads, schema=EXPECTED_SHAPE).events == ()


def test_a_null_price_or_a_bad_time_is_quarantined_not_guessed(recorded_samples: Path) -> None:
    body = json.loads((recorded_samples / SAMPLE).read_text(encoding="utf-8"))
    item = body["data"][0]
    no_price = normalize(
        RawRecord.of("coincap", {"data": {**item, "priceUsd": None}, "timestamp": 1})
    )
    assert not isinstance(no_price, UnifiedRecord)
    no_time = normalize(RawRecord.of("coincap", {"data": item, "timestamp": "yesterday"}))
    assert not isinstance(no_time, UnifiedRecord)
    assert "timestamp" in no_time.reason


def test_a_key_is_required_and_limits_beyond_2000_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    with pytest.raises(UpstreamAuthError, match="COINCAP_API_KEY"):
        CoinCapSource.from_settings(settings_for(url, coincap_enabled=True))
    with pytest.raises(ValidationError, match="coincap_per_page"):
        settings_for(url, coincap_per_page=2001)


def test_pages_by_offset_with_retries_against_the_fake(fake: FakeUpstreams, tmp_path: Path) -> None:
    fake.state.add_faults(
        [
            Fault("rate_limit", vendor="coincap", page=2),
            Fault("truncated", vendor="coincap", page=3),
        ]
    )
    source = CoinCapSource.from_settings(coincap_settings(f"sqlite:///{tmp_path}/k.db", fake))
    labels, failure = crawl(source)
    assert (labels, failure) == (["page 1", "page 2", "page 3"], None)
    offsets = [entry["query"] for entry in fake.state.log if entry["path"] == PATH]
    assert offsets == [
        "limit=200&offset=0",
        "limit=200&offset=200",
        "limit=200&offset=200",
        "limit=200&offset=400",
        "limit=200&offset=400",
    ]


def test_a_wrong_key_fails_at_once_without_showing_it(fake: FakeUpstreams, tmp_path: Path) -> None:
    fake.state.coincap_key = "f" * 64
    source = CoinCapSource.from_settings(coincap_settings(f"sqlite:///{tmp_path}/k.db", fake))
    labels, failure = crawl(source)
    assert labels == []
    assert isinstance(failure, UpstreamAuthError)
    assert "HTTP 401" in str(failure)
    assert KEY not in str(failure)
    assert fake.state.count("coincap", PATH) == 1


def test_over_the_rate_limit_it_retries_then_gives_up(fake: FakeUpstreams, tmp_path: Path) -> None:
    fake.state.coincap_rate_limit = 1
    source = CoinCapSource.from_settings(coincap_settings(f"sqlite:///{tmp_path}/k.db", fake))
    labels, failure = crawl(source)
    assert labels == ["page 1"]
    assert isinstance(failure, UpstreamUnavailable)
    assert "HTTP 429" in str(failure)
    assert fake.state.count("coincap", PATH) == 3


def test_the_retired_host_fails_the_run_with_its_notice(
    fake: FakeUpstreams, tmp_path: Path, recorded_samples: Path
) -> None:
    recorded = json.loads((recorded_samples / NOTICE).read_text(encoding="utf-8"))
    retired = fake.coincap.url + "/v2"
    settings = coincap_settings(f"sqlite:///{tmp_path}/k.db", fake, coincap_base_url=retired)
    labels, failure = crawl(CoinCapSource.from_settings(settings))
    assert labels == []
    assert isinstance(failure, BadPayload)
    assert recorded["data"]["message"] in str(failure)


def test_check_reads_one_asset(fake: FakeUpstreams, tmp_path: Path) -> None:
    source = CoinCapSource.from_settings(coincap_settings(f"sqlite:///{tmp_path}/k.db", fake))
    try:
        assert source.check().status == "ok"
        fake.state.coincap_key = "e" * 64
        check = source.check()
    finally:
        source.close()
    assert (check.status, KEY in check.detail, "401" in check.detail) == ("error", False, True)


def test_a_run_on_both_databases_is_idempotent_and_resumes(
    fake: FakeUpstreams, database_url: str, engine: Engine
) -> None:
    settings = coincap_settings(database_url, fake)
    fake.state.add_faults([Fault("server_error", vendor="coincap", page=3, times=2)])
    failed = run_source(engine, settings, "coincap", trigger="test")
    assert (failed.status, failed.failure_point) == ("failed", "fetch after page 2"), failed
    with engine.connect() as conn:
        assert read_checkpoint(conn, "coincap") == {"next_page": 3}
    resumed = run_source(engine, settings, "coincap", trigger="test")
    assert resumed.status == "success", resumed
    listed = fake.universe.coingecko_items()
    no_price = sum(1 for item in listed if item["current_price"] is None)
    assert resumed.records_processed == len(listed) - 400
    assert count(engine, schema.asset_sources) == len(listed) - no_price
    history = count(engine, schema.price_history)
    again = run_source(engine, settings, "coincap", trigger="test")
    assert again.status == "success"
    assert (again.records_loaded, count(engine, schema.price_history)) == (0, history)
