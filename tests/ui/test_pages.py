"""The console's pages on SQLite and PostgreSQL, over data loaded by the real ETL: what each
page says, its filters, its security headers, escaping, and where the admin key never goes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.api.ui.assets import chart_series
from kasparro.api.ui.render import age, price, sparkline
from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import RunResult
from tests.api.conftest import ADMIN_KEY, run_row

HOSTILE = '<script>alert("x")</script>'


def _runs(engine: Engine, source: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                sa.select(schema.etl_runs.c.run_id)
                .where(schema.etl_runs.c.source == source)
                .order_by(schema.etl_runs.c.started_at)
            )
        )


def test_root_redirects_to_the_console(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/ui"


def test_every_page_carries_the_security_headers(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    run_id = loaded["csv"].run_id
    for path in ("/ui", "/ui/runs", f"/ui/runs/{run_id}", "/ui/assets", "/ui/problems"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "'unsafe-inline'" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        # No inline script: every script is a file of the service's own (or a JSON data block).
        assert "<script>" not in response.text


def test_overview_names_every_source_and_what_is_failing(
    client: TestClient, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.etl_runs),
            [
                run_row(
                    "f" * 36,
                    "csv",
                    "failed",
                    now,
                    now,
                    error="the CSV file could not be read",
                    failure_point="fetch",
                )
            ],
        )
    page = client.get("/ui").text
    for source in ("csv", "csv_weird"):
        assert f"<h3>{source}" in page
    assert "The last run failed at fetch: the CSV file could not be read." in page
    assert "newest observation" in page
    assert '<svg class="spark"' in page


def test_overview_calls_a_source_healthy_only_with_fresh_data(
    settings: Settings, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    """A source that never stored an observation, or whose newest is older than
    SOURCE_STALE_SECONDS, is not healthy, and the page says why in words."""
    decade = 10 * 365 * 86_400

    def overview(**changes: Any) -> str:
        with TestClient(create_app(settings.model_copy(update=changes), engine)) as client:
            return str(client.get("/ui").text)

    healthy = "Every enabled source is healthy"
    assert healthy in overview(source_stale_seconds=decade)
    never_run = overview(source_stale_seconds=decade, binance_enabled=True)
    assert healthy not in never_run
    assert "<strong>binance</strong>: No run yet: it has no data." in never_run
    now = datetime.now(UTC)
    with engine.begin() as conn:  # a run that succeeded and stored nothing
        conn.execute(
            sa.insert(schema.etl_runs), [run_row("b" * 36, "binance", "success", now, now)]
        )
    empty = overview(source_stale_seconds=decade, binance_enabled=True)
    assert healthy not in empty
    assert "<strong>binance</strong>: No data: none of its runs has stored an observation." in empty
    # The samples' observations are older than a minute: stale, though the runs succeeded.
    stale = overview(source_stale_seconds=60)
    assert healthy not in stale
    assert "<strong>csv</strong>: Its newest observation is" in stale
    assert "its data is stale." in stale


def test_runs_are_filtered_by_source_status_trigger_and_time(
    client: TestClient, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    csv_run, weird_run = loaded["csv"].run_id, loaded["csv_weird"].run_id
    page = client.get("/ui/runs?source=csv&status=&trigger=&since=&until=").text
    assert csv_run[:8] in page
    assert weird_run[:8] not in page
    assert csv_run[:8] not in client.get("/ui/runs?trigger=api").text
    assert csv_run[:8] in client.get("/ui/runs?trigger=test").text
    assert csv_run[:8] not in client.get("/ui/runs?since=2999-01-01T00:00").text
    assert csv_run[:8] in client.get("/ui/runs?until=2999-01-01T00:00").text
    refused = client.get("/ui/runs?since=yesterday")
    assert refused.status_code == 200
    assert "is not a date and time" in refused.text


def test_a_run_page_and_a_comparison(
    client: TestClient, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    run_id = loaded["csv_weird"].run_id
    page = client.get(f"/ui/runs/{run_id}").text
    assert run_id in page
    assert "3 refused by this run; 3 still held." in page  # the messy sample's three lines
    assert "missing_price" in page
    from kasparro.etl.runner import run_source

    again = run_source(engine, client.app.state.settings, "csv_weird", trigger="test")  # type: ignore[attr-defined]
    compared = client.get(f"/ui/runs/compare?a={run_id}&b={again.run_id}")
    assert compared.status_code == 200
    assert "What changed" in compared.text
    other = client.get(f"/ui/runs/compare?a={run_id}&b={loaded['csv'].run_id}")
    assert other.status_code == 400
    assert "runs of different sources cannot be compared" in other.text
    assert client.get("/ui/runs/no-such-run").status_code == 404


def test_search_finds_by_ticker_and_by_name(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    by_ticker = client.get("/ui/assets?q=btc").text
    by_name_start = client.get("/ui/assets?q=BITc").text
    inside = client.get("/ui/assets?q=itcoi").text
    by_name_inside = client.get("/ui/assets?q=itcoi&anywhere=true").text
    for page in (by_ticker, by_name_start, by_name_inside):
        assert 'href="/ui/assets/bitcoin"' in page
    # The start of a name is looked up by its index; inside a name, only when asked.
    assert 'href="/ui/assets/bitcoin"' not in inside
    assert "anywhere=true" in inside
    assert "No asset matches." in client.get("/ui/assets?q=zzzz-nothing").text


def test_asset_page_shows_sources_members_and_the_chart_data(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    page = client.get("/ui/assets/bitcoin").text
    assert "Bitcoin (BTC)" in page
    assert "btc-bitcoin" in page
    assert 'id="chart-data"' in page
    assert "Linked by" in page
    assert client.get("/ui/assets/bitcoin?range=7d").status_code == 200
    assert client.get("/ui/assets/nothing-here").status_code == 404


def test_problems_group_quarantine_by_reason_and_filter_it(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    page = client.get("/ui/problems").text
    assert "Quarantined records (3)" in page
    assert "missing_price</a> in csv_weird: 1" in page
    narrowed = client.get("/ui/problems?source=csv_weird&reason_code=missing_price").text
    assert "Quarantined records (1)" in narrowed
    assert "Replay these quarantined records" in narrowed
    assert "Quarantined records (0)" in client.get("/ui/problems?source=csv").text


def test_stored_text_is_escaped(client: TestClient, engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.etl_runs),
            [run_row("e" * 36, "csv", "failed", now, now, error=HOSTILE, failure_point=HOSTILE)],
        )
        conn.execute(
            sa.insert(schema.quarantine),
            [
                {
                    "source": "csv",
                    "raw_id": "r" * 64,
                    "source_asset_id": HOSTILE,
                    "reason": HOSTILE,
                    "reason_code": "invalid",
                    "payload": {"name": HOSTILE},
                    "run_id": "e" * 36,
                    "created_at": now,
                }
            ],
        )
    for path in ("/ui", "/ui/runs", f"/ui/runs/{'e' * 36}", "/ui/problems"):
        page = client.get(path).text
        assert HOSTILE not in page, path
        assert "&lt;script&gt;" in page, path


def test_the_admin_key_never_reaches_a_page(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    for path in ("/ui", "/ui/problems", "/ui/runs"):
        response = client.get(path, headers={"X-API-Key": ADMIN_KEY})
        assert ADMIN_KEY not in response.text
        assert all(ADMIN_KEY not in value for value in response.headers.values())


def test_static_files_share_one_metrics_label(client: TestClient) -> None:
    assert client.get("/ui/static/console.css").status_code == 200
    assert client.get("/ui/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    metrics = client.get("/metrics").text
    assert 'route="/ui/static/{path}"' in metrics
    assert "console.css" not in metrics


@pytest.mark.parametrize(
    ("seconds", "said"), [(None, "no data"), (5, "5 s"), (600, "10 min"), (3900, "1 h 5 min")]
)
def test_ages_in_words(seconds: float | None, said: str) -> None:
    assert age(seconds) == said


@pytest.mark.parametrize(
    ("value", "said"), [(63412.5, "$63,412.50"), (0.99981, "$0.9998"), (0.00001234, "$0.00001234")]
)
def test_prices_keep_their_significant_digits(value: float, said: str) -> None:
    assert price(value) == said


def test_sparkline_spans_the_box() -> None:
    points = [tuple(map(float, p.split(","))) for p in sparkline([1, 5, 3], 120, 28).split()]
    assert [x for x, _ in points] == [0.0, 60.0, 120.0]
    assert min(y for _, y in points) == 2.0  # the highest value at the top
    assert max(y for _, y in points) == 26.0


def test_chart_series_aligns_sources_on_one_time_axis() -> None:
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"source": "csv", "observed_at": t2, "price_usd": 2.0},
        {"source": "coingecko", "observed_at": t1, "price_usd": 1.0},
        {"source": "csv", "observed_at": t1, "price_usd": 1.5},
    ]
    assert chart_series(rows) == {
        "sources": ["coingecko", "csv"],
        "x": [t1.timestamp(), t2.timestamp()],
        "y": [[1.0, None], [1.5, 2.0]],
    }


def test_asset_page_shows_the_consensus_price_the_api_serves(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    reference = client.get("/assets/bitcoin/price")
    page = client.get("/ui/assets/bitcoin").text
    if reference.status_code == 200:
        assert "Consensus reference price" in page
        body = reference.json()
        if body["status"] == "ok":
            assert price(body["price_usd"]) in page
    else:
        assert reference.status_code == 404
        assert "Consensus reference price" not in page


def test_open_reviews_offer_accept_and_reject(client: TestClient, engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.assets),
            [
                {
                    "asset_id": "weth-2",
                    "symbol": "WETH",
                    "name": "WETH",
                    "created_at": now,
                    "created_run_id": "r",
                }
            ],
        )
        conn.execute(
            sa.insert(schema.identity_reviews),
            [
                {
                    "source": "coinpaprika",
                    "source_asset_id": "weth-weth",
                    "asset_id": "weth-2",
                    "reason": "two candidates score alike",
                    "candidates": [],
                    "run_id": "r",
                    "created_at": now,
                }
            ],
        )
    page = client.get("/ui/problems").text
    assert "Open identity reviews (1)" in page
    assert 'data-url="/identity/reviews/coinpaprika/weth-weth/accept"' in page
    assert 'data-url="/identity/reviews/coinpaprika/weth-weth/reject"' in page
