"""GET /assets, /assets/{asset_id} and /assets/{asset_id}/history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.schemas import Asset, AssetHistory, AssetPage
from kasparro.config import Settings
from kasparro.consensus.refresh import compute_now
from kasparro.db import schema
from kasparro.etl.runner import RunResult
from tests.api.conftest import assert_problem


def _btc(client: TestClient) -> dict[str, Any]:
    body = client.get("/assets", params={"symbol": "btc"}).json()
    assert body["meta"]["total"] == 1, body
    item: dict[str, Any] = body["data"][0]
    return item


def test_assets_carry_per_source_prices_and_the_consensus_reference_price(
    client: TestClient, engine: Engine, settings: Settings, loaded: dict[str, RunResult]
) -> None:
    compute_now(engine, settings)  # what an ETL cycle does after its runs
    body = client.get("/assets", params={"limit": 1000}).json()
    page = AssetPage.model_validate(body)
    with engine.connect() as conn:
        total = conn.scalar(sa.select(sa.func.count()).select_from(schema.assets))
        links = conn.execute(sa.select(schema.asset_sources)).all()
    assert page.meta.total == total == len(page.data)
    assert [a.asset_id for a in page.data] == sorted(a.asset_id for a in page.data)
    priced = 0
    for item in page.data:
        mine = [r for r in links if r.asset_id == item.asset_id]
        assert item.source_count == len(mine) == len(item.prices)
        assert sorted(p.source for p in item.prices) == sorted(r.source for r in mine)
        reference = client.get(f"/assets/{item.asset_id}/price")
        if reference.status_code == 404:
            assert (item.consensus_price_usd, item.consensus_status) == (None, None)
            continue
        priced += 1
        ref = reference.json()
        assert item.consensus_price_usd == ref["price_usd"]
        assert item.consensus_status == ref["status"]
        assert item.consensus_as_of == datetime.fromisoformat(ref["as_of"])
    assert priced > 0

    btc = _btc(client)
    assert btc["symbol"] == "BTC"
    assert {p["source"] for p in btc["prices"]} == {"csv", "csv_weird"}
    assert btc["consensus_price_usd"] is not None
    assert (
        client.get(f"/assets/{btc['asset_id']}").json()["consensus_price_usd"]
        == (btc["consensus_price_usd"])
    )


def test_the_consensus_in_assets_ignores_a_source_a_thousand_times_off(
    client: TestClient, engine: Engine, settings: Settings, loaded: dict[str, RunResult]
) -> None:
    """A plain median of two sources, one 1000x off, would be 500x the truth."""
    compute_now(engine, settings)
    btc = _btc(client)
    truth = btc["consensus_price_usd"]
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.asset_sources)
            .where(
                schema.asset_sources.c.asset_id == btc["asset_id"],
                schema.asset_sources.c.source == "csv_weird",
            )
            .values(price_usd=truth * 1000)
        )
    compute_now(engine, settings, asset_ids=[btc["asset_id"]])
    after = _btc(client)
    assert after["consensus_price_usd"] in (None, pytest.approx(truth, rel=0.005))
    assert after["consensus_price_usd"] != pytest.approx(truth * 500, rel=0.5)


def test_assets_pagination_and_filters(client: TestClient, loaded: dict[str, RunResult]) -> None:
    everything = client.get("/assets", params={"limit": 1000}).json()["data"]
    ids = [a["asset_id"] for a in everything]
    page = client.get("/assets", params={"limit": 5, "offset": 5}).json()
    assert [a["asset_id"] for a in page["data"]] == ids[5:10]
    assert (page["meta"]["limit"], page["meta"]["offset"], page["meta"]["count"]) == (5, 5, 5)

    named = client.get("/assets", params={"q": "ETHER"}).json()
    assert named["data"]
    assert all("ether" in a["name"].lower() for a in named["data"])
    assert client.get("/assets", params={"symbol": "nope"}).json()["data"] == []


def test_one_asset_and_404(client: TestClient, loaded: dict[str, RunResult]) -> None:
    btc = _btc(client)
    response = client.get(f"/assets/{btc['asset_id']}")
    assert response.status_code == 200
    assert Asset.model_validate(response.json()).model_dump(mode="json") == btc
    assert_problem(client.get("/assets/no-such-asset"), 404, mentions="no-such-asset")


def test_history_newest_first_with_source_and_range_filters(
    client: TestClient, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    asset_id = _btc(client)["asset_id"]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.price_history).where(schema.price_history.c.asset_id == asset_id)
        ).all()
    assert len(rows) >= 2
    response = client.get(f"/assets/{asset_id}/history", params={"limit": 1000})
    body = AssetHistory.model_validate(response.json())
    # Written without the model (orjson): exactly the JSON the model would write.
    assert body.model_dump(mode="json") == response.json()
    assert body.asset_id == asset_id
    assert body.meta.count == len(rows) == len(body.data)
    keys = [(r.observed_at, r.source) for r in body.data]
    assert keys == sorted(keys, key=lambda k: (-k[0].timestamp(), k[1]))

    only_csv = client.get(f"/assets/{asset_id}/history", params={"source": "csv"}).json()
    assert {r["source"] for r in only_csv["data"]} == {"csv"}

    times = sorted({r.observed_at for r in rows})
    newest, oldest = times[-1], times[0]
    since = client.get(f"/assets/{asset_id}/history", params={"from": newest.isoformat()}).json()
    assert {r["observed_at"] for r in since["data"]} == {newest.isoformat().replace("+00:00", "Z")}
    until = client.get(
        f"/assets/{asset_id}/history",
        params={"to": oldest.replace(tzinfo=None).isoformat()},  # naive means UTC
    ).json()
    assert until["data"]
    assert all(
        datetime.fromisoformat(r["observed_at"]) <= oldest.astimezone(UTC) for r in until["data"]
    )
    limited = client.get(f"/assets/{asset_id}/history", params={"limit": 1}).json()
    assert limited["meta"]["count"] == 1
    empty = client.get(
        f"/assets/{asset_id}/history",
        params={"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"},
    ).json()
    assert empty["data"] == []
    edges = client.get(
        f"/assets/{asset_id}/history",
        params={"from": "0001-01-01T00:00:00+05:00", "to": "9999-12-31T23:59:59-05:00"},
    )
    assert edges.status_code == 200
    assert edges.json()["meta"]["count"] == min(100, len(rows))


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-13-45"}, "to"),
        ({"limit": 0}, "limit"),
        ({"source": "bloomberg"}, "source"),
    ],
)
def test_history_bad_parameters(
    client: TestClient, loaded: dict[str, RunResult], params: dict[str, Any], name: str
) -> None:
    asset_id = _btc(client)["asset_id"]
    response = client.get(f"/assets/{asset_id}/history", params=params)
    body = assert_problem(response, 422, mentions=f"`{name}`")
    assert body["errors"][0]["name"] == name


def test_history_of_an_unknown_asset_is_404(client: TestClient) -> None:
    assert_problem(client.get("/assets/nope/history"), 404, mentions="nope")


def test_asset_bad_parameters(client: TestClient) -> None:
    assert_problem(client.get("/assets", params={"limit": 5000}), 422, mentions="`limit`")
    assert_problem(client.get("/assets", params={"offset": "x"}), 422, mentions="`offset`")
