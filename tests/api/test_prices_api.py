"""Reference prices over HTTP, on SQLite and PostgreSQL: one asset's, several at once, one
asset's history (keyset pages), and computing them on demand (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.price_schemas import PriceHistory, PriceList, ReferencePrice
from kasparro.consensus.store import write
from kasparro.db import schema
from kasparro.db.engine import write_transaction
from tests.api.conftest import ADMIN_KEY, assert_problem

ADMIN = {"X-API-Key": ADMIN_KEY}
T0 = datetime(2026, 5, 13, tzinfo=UTC)


def _asset_of(engine: Engine, symbol: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.scalar(sa.select(schema.assets.c.asset_id).where(schema.assets.c.symbol == symbol))
        )


@pytest.mark.usefixtures("loaded")
def test_computed_on_demand_then_served(client: TestClient, engine: Engine) -> None:
    btc, eth = _asset_of(engine, "BTC"), _asset_of(engine, "ETH")
    before = client.get(f"/assets/{btc}/price")
    assert_problem(before, 404, mentions="no reference price yet")
    assert before.json()["type"].endswith("no-reference-price")

    computed = client.post("/consensus/compute", headers=ADMIN)
    assert computed.status_code == 200, computed.text
    body = computed.json()
    assert body["assets"] == body["written"] > 0
    assert sum(body["statuses"].values()) == body["assets"]
    assert client.post("/consensus/compute", headers=ADMIN).json()["written"] == 0

    price = ReferencePrice.model_validate(client.get(f"/assets/{btc}/price").json())
    assert price.status == "ok" and price.price_usd is not None
    assert price.as_of == T0
    assert {c.source for c in price.used} == {"csv", "csv_weird"}
    assert price.excluded == []
    assert sum(c.weight or 0 for c in price.used) == pytest.approx(1)

    many = PriceList.model_validate(
        client.get(
            "/prices", params=[("asset_id", eth), ("asset_id", "nope"), ("asset_id", btc)]
        ).json()
    )
    assert [p.asset_id for p in many.data] == [eth, btc]
    assert many.meta.missing == ["nope"]
    assert many.meta.count == 2


@pytest.mark.usefixtures("loaded")
def test_compute_for_some_assets_and_refusals(client: TestClient, engine: Engine) -> None:
    btc = _asset_of(engine, "BTC")
    assert_problem(client.post("/consensus/compute"), 401)
    assert_problem(client.post("/consensus/compute", headers={"X-API-Key": "x" * 20}), 403)
    missing = client.post(
        "/consensus/compute", params=[("asset_id", btc), ("asset_id", "nope")], headers=ADMIN
    )
    assert_problem(missing, 404, mentions="'nope'")
    one = client.post("/consensus/compute", params={"asset_id": btc}, headers=ADMIN)
    assert (one.status_code, one.json()["assets"], one.json()["written"]) == (200, 1, 1)


def test_unknown_assets_and_bad_parameters(client: TestClient) -> None:
    assert_problem(client.get("/assets/nope/price"), 404, mentions="'nope'")
    assert_problem(client.get("/assets/nope/price/history"), 404, mentions="'nope'")
    assert_problem(client.get("/prices"), 422)
    too_many = [("asset_id", f"a{n}") for n in range(101)]
    assert client.get("/prices", params=too_many).status_code in (400, 422)
    assert_problem(client.get("/prices", params={"asset_id": "x" * 161}), 422)
    assert_problem(client.get("/prices", params=[("asset_id", "a"), ("asset_id", "")]), 422)


def _history_rows(asset_id: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "asset_id": asset_id,
            "as_of": T0 + timedelta(minutes=10 * n),
            "status": "ok",
            "price_usd": 100.0 + n,
            "dispersion_bps": 3.0,
            "sources_used": 2,
            "sources_total": 3,
            "single_source": False,
            "constituents": [
                {
                    "source": source,
                    "source_asset_id": f"{source}-x",
                    "price_usd": 100.0 + n,
                    "volume_24h_usd": None,
                    "observed_at": (T0 + timedelta(minutes=10 * n)).isoformat(),
                    "weight": 0.5 if reason is None else None,
                    "reason": reason,
                    "detail": None if reason is None else "observed 3,600 s before",
                }
                for source, reason in (("a", None), ("b", None), ("c", "stale"))
            ],
            "computed_at": T0 + timedelta(minutes=10 * n, seconds=5),
        }
        for n in range(count)
    ]


def test_history_pages_newest_first_by_cursor(client: TestClient, engine: Engine) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(schema.assets).values(
                asset_id="x", symbol="X", name="X", created_at=T0, created_run_id="r"
            )
        )
        write(conn, _history_rows("x", 5))
    first = PriceHistory.model_validate(client.get("/assets/x/price/history?limit=2").json())
    assert [p.price_usd for p in first.data] == [104.0, 103.0]
    assert first.data[0].excluded[0].reason == "stale"
    assert first.meta.next_cursor is not None
    pages = [first]
    while pages[-1].meta.next_cursor:
        response = client.get(
            "/assets/x/price/history", params={"limit": 2, "cursor": pages[-1].meta.next_cursor}
        )
        pages.append(PriceHistory.model_validate(response.json()))
    assert [p.price_usd for page in pages for p in page.data] == [104, 103, 102, 101, 100]

    ranged = client.get(
        "/assets/x/price/history",
        params={"from": "2026-05-13T00:10:00", "to": "2026-05-13T00:30:00Z"},
    )
    assert [p["price_usd"] for p in ranged.json()["data"]] == [103, 102, 101]
    empty = client.get("/assets/x/price/history", params={"from": "2026-05-14", "to": "2026-05-13"})
    assert empty.json()["data"] == []

    cursor = first.meta.next_cursor
    other = client.get("/assets/x/price/history", params={"cursor": cursor, "from": "2026-05-13"})
    assert_problem(other, 400, mentions="another `from` and `to`")
    assert_problem(client.get("/assets/x/price/history?cursor=bm9wZQ"), 400, mentions="cursor")
