"""GET /data: rows, order, filters, offset and cursor paging, and bad parameters."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import orjson
import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.queries.data import TotalsCache
from kasparro.api.schemas import DataPage
from kasparro.config import Settings
from kasparro.db import schema
from kasparro.etl.runner import RunResult, run_source
from tests.api.conftest import assert_problem

FIELDS = {
    "asset_id",
    "source",
    "source_asset_id",
    "symbol",
    "name",
    "price_usd",
    "market_cap_usd",
    "volume_24h_usd",
    "observed_at",
    "ingested_at",
    "run_id",
}


def _db_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(schema.asset_sources).order_by(
                    schema.asset_sources.c.source, schema.asset_sources.c.source_asset_id
                )
            )
        )


def _walk_cursor(client: TestClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        response = client.get("/data", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        rows += body["data"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return rows
    raise AssertionError("the cursor never ended")


def test_rows_are_the_latest_per_source_asset_in_a_stable_order(
    client: TestClient, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    response = client.get("/data", headers={"X-Request-ID": "req-data-1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    page = DataPage.model_validate(body)
    expected = _db_rows(engine)
    assert page.meta.total == len(expected) > 0
    assert page.meta.count == len(body["data"]) == min(100, len(expected))
    assert page.meta.request_id == "req-data-1"
    assert page.meta.api_latency_ms >= 0
    assert (page.meta.limit, page.meta.offset) == (100, 0)
    assert set(body["data"][0]) == FIELDS
    assert [(r["source"], r["source_asset_id"]) for r in body["data"]] == [
        (r.source, r.source_asset_id) for r in expected[:100]
    ]
    first, row = body["data"][0], expected[0]
    assert first["price_usd"] == row.price_usd
    assert first["asset_id"] == row.asset_id
    assert first["run_id"] == row.run_id
    assert first["observed_at"].endswith("Z")
    sources = {r["source"] for r in body["data"]}
    assert sources == {"csv", "csv_weird"}
    assert {r["run_id"] for r in body["data"]} <= {r.run_id for r in loaded.values()}


def test_limit_offset_and_cursor_pages_cover_every_row_once(
    client: TestClient, engine: Engine, loaded: dict[str, RunResult]
) -> None:
    expected = [(r.source, r.source_asset_id) for r in _db_rows(engine)]
    by_offset: list[tuple[str, str]] = []
    for offset in range(0, len(expected) + 7, 7):
        body = client.get("/data", params={"limit": 7, "offset": offset}).json()
        assert body["meta"]["offset"] == offset
        assert body["meta"]["total"] == len(expected)
        by_offset += [(r["source"], r["source_asset_id"]) for r in body["data"]]
    assert by_offset == expected

    by_cursor = [(r["source"], r["source_asset_id"]) for r in _walk_cursor(client, {"limit": 7})]
    assert by_cursor == expected

    last = client.get("/data", params={"limit": len(expected)}).json()
    assert last["meta"]["next_cursor"] is None
    assert client.get("/data", params={"offset": len(expected) + 5}).json()["data"] == []


def test_filters(client: TestClient, engine: Engine, loaded: dict[str, RunResult]) -> None:
    rows = _db_rows(engine)

    csv_only = client.get("/data", params={"source": "csv", "limit": 1000}).json()
    assert {r["source"] for r in csv_only["data"]} == {"csv"}
    assert csv_only["meta"]["total"] == sum(1 for r in rows if r.source == "csv")

    btc = client.get("/data", params={"symbol": "btc"}).json()
    assert {r["symbol"] for r in btc["data"]} == {"BTC"}
    assert btc["meta"]["total"] == sum(1 for r in rows if r.symbol == "BTC") >= 2
    asset_id = btc["data"][0]["asset_id"]

    by_asset = client.get("/data", params={"asset_id": asset_id}).json()
    assert {r["asset_id"] for r in by_asset["data"]} == {asset_id}
    assert by_asset["meta"]["total"] == sum(1 for r in rows if r.asset_id == asset_id)

    named = client.get("/data", params={"q": "bITco"}).json()
    assert named["data"]
    assert all("bitco" in r["name"].lower() for r in named["data"])
    assert named["meta"]["total"] == sum(1 for r in rows if "bitco" in r.name.lower())

    # LIKE wildcards are literal.
    assert client.get("/data", params={"q": "%"}).json()["meta"]["total"] == sum(
        1 for r in rows if "%" in r.name
    )
    combined = client.get("/data", params={"source": "csv_weird", "symbol": "eth"}).json()
    assert [(r["source"], r["symbol"]) for r in combined["data"]] == [("csv_weird", "ETH")]
    assert client.get("/data", params={"symbol": "NO-SUCH"}).json()["meta"]["total"] == 0


def test_cursor_follows_filters_and_refuses_other_filters(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    rows = _walk_cursor(client, {"limit": 3, "source": "csv_weird"})
    assert rows
    assert {r["source"] for r in rows} == {"csv_weird"}
    assert len(rows) == client.get("/data", params={"source": "csv_weird"}).json()["meta"]["total"]

    page = client.get("/data", params={"limit": 2, "source": "csv"}).json()
    cursor = page["meta"]["next_cursor"]
    assert cursor
    other = client.get("/data", params={"limit": 2, "source": "csv_weird", "cursor": cursor})
    body = assert_problem(other, 400, mentions="`cursor`")
    assert body["param"] == "cursor"


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        base64.urlsafe_b64encode(b"[1, 2, 3]").decode().rstrip("="),
        base64.urlsafe_b64encode(orjson.dumps({"a": 1})).decode().rstrip("="),
        "A",
    ],
)
def test_bad_cursor_is_a_400_naming_cursor(client: TestClient, cursor: str) -> None:
    assert_problem(client.get("/data", params={"cursor": cursor}), 400, mentions="`cursor`")


def test_cursor_and_offset_together_is_a_400(
    client: TestClient, loaded: dict[str, RunResult]
) -> None:
    cursor = client.get("/data", params={"limit": 1}).json()["meta"]["next_cursor"]
    response = client.get("/data", params={"cursor": cursor, "offset": 0})
    body = assert_problem(response, 400, mentions="`offset`")
    assert "`cursor`" in body["detail"]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"source": "nasdaq"}, "source"),
        ({"symbol": "x" * 65}, "symbol"),
        ({"cursor": "not base64!"}, "cursor"),
    ],
)
def test_bad_parameters_are_problems_naming_them(
    client: TestClient, params: dict[str, Any], name: str
) -> None:
    body = assert_problem(client.get("/data", params=params), 422, mentions=f"`{name}`")
    assert [e["name"] for e in body["errors"]] == [name]
    assert body["errors"][0]["location"] == "query"
    assert body["type"].endswith("validation-error")


def test_a_nul_byte_the_database_would_refuse_is_a_400_naming_it(client: TestClient) -> None:
    body = assert_problem(client.get("/data", params={"q": "a\x00b"}), 400, mentions="`q`")
    assert [e["name"] for e in body["errors"]] == ["q"]
    assert "\x00" not in str(body)


def test_total_follows_every_etl_commit(
    client: TestClient, settings: Settings, engine: Engine
) -> None:
    assert client.get("/data").json()["meta"]["total"] == 0
    for source in ("csv", "csv_weird"):
        assert run_source(engine, settings, source, trigger="test").status == "success"
        expected = len(_db_rows(engine))
        assert client.get("/data").json()["meta"]["total"] == expected > 0


def test_totals_cache_expires_and_follows_the_version() -> None:
    now = [0.0]
    cache = TotalsCache(ttl=10, max_entries=2, clock=lambda: now[0])
    cache.put("f", ("v1",), 5)
    assert cache.get("f", ("v1",)) == 5
    assert cache.get("f", ("v2",)) is None  # the data changed
    cache.put("f", ("v2",), 6)
    now[0] = 11
    assert cache.get("f", ("v2",)) is None  # too old: this caller recounts
    assert cache.get("f", ("v2",)) == 6  # the others keep the last total meanwhile
    now[0] = 22
    assert cache.get("f", ("v2",)) is None  # the recount never came back: another one goes
    cache.put("f", ("v2",), 7)
    assert cache.get("f", ("v2",)) == 7
    now[0] = 33
    for key in ("a", "b", "c"):
        cache.put(key, ("v",), 1)
    assert cache.get("a", ("v",)) is None  # evicted: at most two entries
    assert cache.get("c", ("v",)) == 1


AWKWARD_NAMES = ['Quote " back\\slash', "tab\tnew\nline \x01", "✓ 漢字 \u2028", "100% real_coin"]
AWKWARD_FLOATS = [6.25e-06, 3000.0, 1e15, 1234567890123456.0, 0.1, 27587.0, 1e-9]


def _awkward_rows(engine: Engine) -> None:
    base = sa.func.now()
    with engine.begin() as conn:
        for n, value in enumerate(AWKWARD_FLOATS):
            asset_id = f"asset-{n}"
            name = AWKWARD_NAMES[n % len(AWKWARD_NAMES)]
            conn.execute(
                sa.insert(schema.assets).values(
                    asset_id=asset_id,
                    symbol=f"S{n % 2}",
                    name=name,
                    created_at=base,
                    created_run_id="r",
                )
            )
            conn.execute(
                sa.insert(schema.asset_sources).values(
                    source=("csv", "coingecko")[n % 2],
                    source_asset_id=f"id-{n}",
                    asset_id=asset_id,
                    symbol=f"S{n % 2}",
                    name=name,
                    price_usd=value,
                    market_cap_usd=None if n % 3 == 0 else value * 1000,
                    volume_24h_usd=None if n % 2 else value / 7,
                    # Whole seconds, milliseconds and microseconds.
                    observed_at=sa.text(
                        "timestamptz '2026-01-13 01:13:15+00' + :us * interval '1 microsecond'"
                    ).bindparams(us=(0, 380_000, 942_696)[n % 3]),
                    ingested_at=base,
                    run_id="r",
                    raw_id="x" * 64,
                    match_method="new",
                    match_score=0.0,
                )
            )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_rows_serialized_by_postgres_equal_the_python_path(engine: Engine) -> None:
    from kasparro.api.queries import data as data_queries

    _awkward_rows(engine)
    cases = [
        (data_queries.DataFilters(), 100, 0, None),
        (data_queries.DataFilters(), 2, 0, None),
        (data_queries.DataFilters(), 2, 3, None),
        (data_queries.DataFilters(), 3, 0, ("coingecko", "id-3")),
        (data_queries.DataFilters(source="csv"), 100, 0, None),
        (data_queries.DataFilters(symbol="S1"), 100, 0, None),
        (data_queries.DataFilters(q="% REAL_"), 100, 0, None),
        (data_queries.DataFilters(q="漢"), 100, 0, None),
        (data_queries.DataFilters(asset_id="asset-4"), 100, 0, None),
        (data_queries.DataFilters(source="csv_weird"), 100, 0, None),
    ]
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def json_page(*args: Any, **kwargs: Any) -> data_queries.JsonPage:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as aconn:
            return await data_queries.data_page_json(aconn, *args, **kwargs)

    with engine.connect() as conn:
        for filters, limit, offset, after in cases:
            rows, more, total = data_queries.data_page(
                conn, filters, limit=limit, offset=offset, after=after, totals=TotalsCache()
            )
            page = asyncio.run(
                json_page(filters, limit=limit, offset=offset, after=after, totals=TotalsCache())
            )
            expected = orjson.loads(orjson.dumps(rows, option=orjson.OPT_UTC_Z))
            got = orjson.loads(f"[{page.rows_json}]")
            assert got == expected, (filters, limit, offset, after)
            for row in got:  # floats stay floats: never "3000" for 3000.0
                assert all(
                    isinstance(row[k], float) or row[k] is None
                    for k in ("price_usd", "market_cap_usd", "volume_24h_usd")
                )
            times = [
                r["observed_at"] for r in orjson.loads(orjson.dumps(rows, option=orjson.OPT_UTC_Z))
            ]
            assert [r["observed_at"] for r in got] == times  # the same text, not just instant
            assert (page.count, page.last is not None, page.total) == (len(rows), more, total)
            if more:
                assert page.last == (rows[-1]["source"], rows[-1]["source_asset_id"])
    assert expected == [] and total == 0  # the last case matches nothing
