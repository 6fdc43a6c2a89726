"""The whole pipeline over real HTTP against the fake upstreams, on SQLite and PostgreSQL."""

from __future__ import annotations

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
from tests.helpers import count, settings_for, snapshot

PER_PAGE = 10
PAGES = 68  # the "interrupted on page 37 of 68"
CG_KEY = "cg-test-key-0000"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    # 695 coins, of which CoinGecko lists 674 (the vendors' listings differ): 68 pages of 10.
    with FakeUpstreams(coins=695, coingecko_plan="pro", coingecko_key=CG_KEY) as upstreams:
        assert -(-len(upstreams.universe.coingecko_items()) // PER_PAGE) == PAGES
        yield upstreams


@pytest.fixture(autouse=True)
def _clean_faults(fake: FakeUpstreams) -> Iterator[None]:
    fake.state.clear_faults()
    yield
    fake.state.clear_faults()


def api_settings(database_url: str, fake: FakeUpstreams, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "coingecko_enabled": True,
        "coinpaprika_enabled": True,
        "csv_enabled": True,
        "csv_weird_enabled": True,
        "coingecko_base_url": fake.coingecko_url,
        "coingecko_api_plan": "pro",
        "coingecko_api_key": CG_KEY,
        "coingecko_per_page": PER_PAGE,
        "coinpaprika_base_url": fake.coinpaprika_url,
        "etl_batch_size": 200,
    }
    return settings_for(database_url, **{**values, **overrides})


def _asset_of(engine: Engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.asset_sources.c.source,
                schema.asset_sources.c.source_asset_id,
                schema.asset_sources.c.asset_id,
            )
        )
        return {(r.source, r.source_asset_id): r.asset_id for r in rows}


def _pages_requested(fake: FakeUpstreams) -> list[int]:
    return [
        int(parse_qs(entry["query"])["page"][0])
        for entry in fake.state.log
        if entry["vendor"] == "coingecko" and entry["path"].endswith("/coins/markets")
    ]


def test_four_sources_load_resolve_and_a_rerun_adds_nothing(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    settings = api_settings(database_url, fake)
    sources = ("coingecko", "coinpaprika", "csv", "csv_weird")
    first = {s: run_source(engine, settings, s, trigger="test") for s in sources}
    assert {s: r.status for s, r in first.items()} == dict.fromkeys(sources, "success"), {
        s: r.error for s, r in first.items()
    }
    assert first["coingecko"].records_processed == len(fake.universe.coingecko_items())
    assert all(r.records_loaded > 0 for r in first.values())
    history, raws = count(engine, schema.price_history), count(engine, schema.raw_payloads)

    owners = _asset_of(engine)
    bitcoin = owners[("coingecko", "bitcoin")]
    assert owners[("coinpaprika", "btc-bitcoin")] == bitcoin
    assert owners[("csv", "btc-bitcoin")] == bitcoin
    assert owners[("csv_weird", "btc-bitcoin")] == bitcoin
    # Same ticker, different coins: never merged.
    assert owners[("csv_weird", "sol-wrapped-sol")] != owners[("csv_weird", "sol-solana")]
    assert owners[("coingecko", "solana")] == owners[("coinpaprika", "sol-solana")]
    with engine.connect() as conn:
        per_source = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.asset_sources)
            .group_by(schema.asset_sources.c.asset_id, schema.asset_sources.c.source)
            .having(sa.func.count() > 1)
        ).all()
    assert per_source == []

    second = {s: run_source(engine, settings, s, trigger="test") for s in sources}
    assert {s: r.records_loaded for s, r in second.items()} == dict.fromkeys(sources, 0)
    assert (count(engine, schema.price_history), count(engine, schema.raw_payloads)) == (
        history,
        raws,
    )

    # A new snapshot upstream: new history for the API sources, and every asset keeps its id.
    fake.universe.advance(600)
    third = {
        s: run_source(engine, settings, s, trigger="test") for s in ("coingecko", "coinpaprika")
    }
    assert all(r.records_loaded > 0 for r in third.values())
    after = _asset_of(engine)
    assert {k: v for k, v in after.items() if k in owners} == owners


def test_coingecko_interrupted_on_page_37_of_68_resumes_there(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    settings = api_settings(database_url, fake, http_max_attempts=2)
    fake.state.add_faults([Fault("server_error", times=10, page=37, vendor="coingecko")])
    fake.state.log.clear()
    failed = run_source(engine, settings, "coingecko", trigger="test")
    assert failed.status == "failed"
    assert failed.failure_point == "fetch after page 36"
    assert "HTTP 500" in (failed.error or "")
    with engine.connect() as conn:
        assert read_checkpoint(conn, "coingecko") == {"next_page": 37}
    loaded = count(engine, schema.price_history) + count(engine, schema.quarantine)
    assert loaded == 36 * PER_PAGE

    fake.state.clear_faults()
    fake.state.log.clear()
    resumed = run_source(engine, settings, "coingecko", trigger="test")
    assert resumed.status == "success"
    assert _pages_requested(fake) == list(range(37, PAGES + 1))
    resumed_state = snapshot(engine)

    with engine.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            conn.execute(sa.delete(table))
    assert run_source(engine, settings, "coingecko", trigger="test").status == "success"
    assert snapshot(engine) == resumed_state


@pytest.mark.parametrize(
    ("fault", "retried"),
    [
        (Fault("rate_limit", times=1, retry_after=1), True),
        (Fault("server_error", times=1), True),
        (Fault("html", times=1), True),
        (Fault("truncated", times=1), True),
    ],
    ids=["429", "500", "html", "truncated"],
)
def test_transient_upstream_faults_are_retried(
    database_url: str, engine: Engine, fake: FakeUpstreams, fault: Fault, retried: bool
) -> None:
    settings = api_settings(database_url, fake, http_max_attempts=3)
    fake.state.add_faults([fault])
    for source in ("coinpaprika", "coingecko"):
        result = run_source(engine, settings, source, trigger="test")
        assert result.status == "success", result.error
    assert fake.state.faults == []


def test_auth_errors_fail_fast_with_the_key_redacted(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    wrong = "cg-wrong-key-1234567"
    settings = api_settings(database_url, fake, coingecko_api_key=wrong, http_max_attempts=5)
    fake.state.log.clear()
    result = run_source(engine, settings, "coingecko", trigger="test")
    assert result.status == "failed"
    assert len(_pages_requested(fake)) == 1  # not retried
    assert wrong not in (result.error or "")
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(schema.etl_runs.c.error))
    assert stored is not None and wrong not in stored


def test_a_bad_record_is_quarantined_and_the_rest_load(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    settings = api_settings(database_url, fake)
    result = run_source(engine, settings, "coinpaprika", trigger="test")
    assert result.status == "success"
    with engine.connect() as conn:
        reasons = conn.execute(
            sa.select(schema.quarantine.c.reason, schema.quarantine.c.payload)
        ).all()
    assert result.records_quarantined == len(reasons)
    assert all(r.reason and r.payload for r in reasons)
    assert result.records_loaded + result.records_quarantined == result.records_processed
