"""GET /drift, /anomalies, and the drift and anomalies of a run in /runs/{id} and /runs/compare."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.api.run_schemas import AnomalyPage, DriftPage, RunComparison, RunDetail
from kasparro.etl.runner import run_source
from kasparro.fakes.faults import Fault
from kasparro.fakes.server import FakeUpstreams
from tests.api.conftest import api_settings, assert_problem


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=40) as upstreams:
        yield upstreams


def test_drift_is_listed_filtered_and_shown_in_its_run(
    database_url: str, engine: Engine, fake: FakeUpstreams
) -> None:
    settings = api_settings(
        database_url,
        coingecko_enabled=True,
        coingecko_base_url=fake.coingecko_url,
        coingecko_per_page=100,
        coinpaprika_enabled=True,
        coinpaprika_base_url=fake.coinpaprika_url,
    )
    fake.state.clear_faults()
    fake.state.add_faults(
        [
            Fault("drift", vendor="coingecko", rename={"current_price": "price"}),
            Fault("drift", vendor="coinpaprika", drop=["quotes.USD.price"]),
        ]
    )
    try:
        renamed = run_source(engine, settings, "coingecko", trigger="test")
        dropped = run_source(engine, settings, "coinpaprika", trigger="test")
    finally:
        fake.state.clear_faults()
    assert renamed.status == "success"
    assert dropped.status == "degraded"

    with TestClient(create_app(settings, engine)) as client:
        everything = DriftPage.model_validate(client.get("/drift").json())
        assert everything.meta.total == len(everything.data) >= 2
        created = [event.created_at for event in everything.data]
        assert created == sorted(created, reverse=True)

        applied = DriftPage.model_validate(
            client.get("/drift", params={"source": "coingecko", "kind": "rename"}).json()
        )
        assert [(e.field, e.action, e.run_id) for e in applied.data] == [
            ("current_price", "applied", renamed.run_id)
        ]
        assert applied.data[0].confidence >= settings.drift_rename_confidence

        quarantined = DriftPage.model_validate(
            client.get("/drift", params={"action": "quarantined"}).json()
        )
        assert {(e.source, e.kind, e.field) for e in quarantined.data} == {
            ("coinpaprika", "missing", "quotes.USD.price")
        }

        run = RunDetail.model_validate(client.get(f"/runs/{dropped.run_id}").json())
        assert run.status == "degraded"
        assert {e.id for e in run.drift_events} == {
            e.id for e in everything.data if e.run_id == dropped.run_id
        }
        assert ("missing", "quarantined") in {(e.kind, e.action) for e in run.drift_events}

        # A degraded run still counts as a success: it loaded what it could trust.
        health = client.get("/health").json()
        assert health["sources"]["coinpaprika"]["last_success_at"] is not None

        metrics = client.get("/metrics").text
        assert _sample(metrics, "kasparro_drift_events_total", 'action="applied",kind="rename"') > 0
        assert _sample(metrics, "kasparro_drift_events_total", 'action="quarantined"') > 0

        assert_problem(client.get("/drift", params={"kind": "sideways"}), 422, mentions="kind")
        assert_problem(client.get("/drift", params={"limit": 0}), 422, mentions="limit")


def test_anomalies_are_listed_and_shown_in_runs_and_comparisons(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n")
    # Durations on a shared machine are noise here: only the count drop is under test.
    settings = api_settings(
        database_url,
        csv_enabled=True,
        csv_weird_enabled=False,
        csv_path=path,
        anomaly_duration_factor=1000,
    )
    runs = []
    for day in range(1, 5):
        with path.open("a") as handle:
            for n in range(20):
                handle.write(f"C{n},Coin {n},{n + 1},{(n + 1) * 1e6},1000,2026-05-0{day}\n")
        runs.append(run_source(engine, settings, "csv", trigger="test"))
    with path.open("a") as handle:
        handle.write("C1,Coin 1,2,2000000,1000,2026-05-09\n")
    small = run_source(engine, settings, "csv", trigger="test")
    assert small.status == "success"

    with TestClient(create_app(settings, engine)) as client:
        found = AnomalyPage.model_validate(client.get("/anomalies").json())
        assert [(a.kind, a.source, a.run_id) for a in found.data] == [
            ("record_count_drop", "csv", small.run_id)
        ]
        assert found.data[0].value == 1
        assert found.data[0].baseline == 20
        by_kind = client.get("/anomalies", params={"kind": "price_outlier"}).json()
        assert by_kind["data"] == []
        assert by_kind["meta"]["total"] == 0
        by_run = client.get("/anomalies", params={"run_id": runs[0].run_id}).json()
        assert by_run["data"] == []

        run = RunDetail.model_validate(client.get(f"/runs/{small.run_id}").json())
        assert [a.kind for a in run.anomalies] == ["record_count_drop"]
        assert run.drift_events == []
        earlier = RunDetail.model_validate(client.get(f"/runs/{runs[-1].run_id}").json())
        assert earlier.anomalies == []

        compared = RunComparison.model_validate(
            client.get("/runs/compare", params={"a": runs[-1].run_id, "b": small.run_id}).json()
        )
        assert compared.anomalies_a == []
        assert [a.kind for a in compared.anomalies_b] == ["record_count_drop"]
        assert compared.records_processed.delta == 1 - 20

        metrics = client.get("/metrics").text
        assert _sample(metrics, "kasparro_anomalies_total", 'kind="record_count_drop"') > 0

        assert_problem(client.get("/anomalies", params={"source": "nope"}), 422, mentions="source")


def _sample(exposition: str, name: str, labels: str) -> float:
    """The value of the first sample of `name` whose labels contain `labels`, else 0."""
    for line in exposition.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
