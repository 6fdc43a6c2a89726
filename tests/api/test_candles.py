"""GET /assets/{id}/candles on SQLite and PostgreSQL: buckets, OHLC, paging, the consensus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.history_schemas import CandlePage
from kasparro.api.queries.candles import candles
from kasparro.db import schema
from tests.api.conftest import assert_problem

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def add_asset(engine: Engine, asset_id: str = "alpha") -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.assets).values(
                asset_id=asset_id, symbol="ALP", name="Alpha", created_at=T0, created_run_id="r"
            )
        )


def add_prices(
    engine: Engine, points: list[tuple[datetime, float]], *, source: str = "coingecko", **more: Any
) -> None:
    rows = [
        {
            "source": source,
            "source_asset_id": f"alpha-{source}",
            "observed_at": when,
            "asset_id": more.get("asset_id", "alpha"),
            "price_usd": price,
            "market_cap_usd": None,
            "volume_24h_usd": price * 1000 if more.get("volume", True) else None,
            "ingested_at": when + timedelta(seconds=5),
            "run_id": "r",
            "raw_id": f"{source}{when:%Y%m%d%H%M%S}".ljust(64, "0"),
        }
        for when, price in points
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.price_history), rows)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def alpha(engine: Engine) -> Engine:
    """Alpha: CoinGecko prices over three hours (out of order on purpose), CoinPaprika apart."""
    add_asset(engine)
    add_prices(
        engine,
        [
            (at(50), 12.0),  # 10:00 bucket, last
            (at(0), 10.0),  # 10:00 bucket, first
            (at(20), 15.0),
            (at(30), 9.0),
            (at(61), 20.0),  # 11:00 bucket, alone
            (at(150), 30.0),  # 12:00 bucket
            (at(179.5), 31.0),
        ],
    )
    add_prices(engine, [(at(10), 1000.0), (at(70), 0.001)], source="coinpaprika")
    return engine


def get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/assets/alpha/candles", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    # Written without the model (orjson): exactly the JSON the model would write.
    assert CandlePage.model_validate(body).model_dump(mode="json") == body
    return body


def window(**extra: Any) -> dict[str, Any]:
    return {"source": "coingecko", "from": at(-60).isoformat(), "to": at(240).isoformat(), **extra}


def test_hourly_candles_of_one_source(client: TestClient, alpha: Engine) -> None:
    body = get(client, interval="1h", **window())
    summary = [
        (c["start"], c["open"], c["high"], c["low"], c["close"], c["observations"])
        for c in body["data"]
    ]
    # CoinPaprika's 1000 and 0.001 never enter CoinGecko's candles.
    assert summary == [
        ("2026-11-30T10:00:00Z", 10.0, 15.0, 9.0, 12.0, 4),
        ("2026-11-30T11:00:00Z", 20.0, 20.0, 20.0, 20.0, 1),
        ("2026-11-30T12:00:00Z", 30.0, 31.0, 30.0, 31.0, 2),
    ]
    first = body["data"][0]
    assert first["end"] == "2026-11-30T11:00:00Z"
    assert first["first_observed_at"] == "2026-11-30T10:00:00Z"
    assert first["last_observed_at"] == "2026-11-30T10:50:00Z"
    assert first["volume_24h_usd"] == 12_000.0  # the last observation's, not a sum
    assert body["meta"]["next_cursor"] is None
    assert (body["asset_id"], body["source"], body["interval"]) == ("alpha", "coingecko", "1h")


def test_buckets_are_aligned_on_the_epoch(client: TestClient, alpha: Engine) -> None:
    five = get(client, interval="5m", **window())["data"]
    assert [c["start"][11:16] for c in five] == [
        "10:00", "10:20", "10:30", "10:50", "11:00", "12:30", "12:55"
    ]  # fmt: skip
    minute = get(client, interval="1m", **window())["data"]
    assert minute[-1]["start"] == "2026-11-30T12:59:00Z"  # 12:59:30 is in the 12:59 minute
    day = get(client, interval="1d", **window())["data"]
    assert [(c["start"], c["open"], c["close"], c["observations"]) for c in day] == [
        ("2026-11-30T00:00:00Z", 10.0, 31.0, 7)
    ]


def test_range_rounds_from_down_and_excludes_to(client: TestClient, alpha: Engine) -> None:
    # From 10:40 is rounded down to 10:00: the whole first bucket. To 12:30 excludes 12:30.
    body = get(
        client,
        source="coingecko",
        interval="1h",
        **{"from": at(40).isoformat(), "to": at(150).isoformat()},
    )
    assert [(c["start"][11:16], c["observations"]) for c in body["data"]] == [
        ("10:00", 4),
        ("11:00", 1),
    ]


def test_pages_follow_the_cursor(client: TestClient, alpha: Engine) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        params = window(interval="5m", limit=3) | ({"cursor": cursor} if cursor else {})
        body = get(client, **params)
        seen += [c["start"] for c in body["data"]]
        pages += 1
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    everything = [c["start"] for c in get(client, interval="5m", **window())["data"]]
    assert seen == everything
    assert pages == 3
    # A cursor is tied to its query.
    first = get(client, **window(interval="5m", limit=3))["meta"]["next_cursor"]
    response = client.get(
        "/assets/alpha/candles", params=window(interval="1h", limit=3) | {"cursor": first}
    )
    assert_problem(response, 400, mentions="cursor")


def test_refusals(client: TestClient, alpha: Engine) -> None:
    missing = client.get("/assets/nope/candles", params={"source": "coingecko"})
    assert_problem(missing, 404, mentions="nope")
    unknown = client.get("/assets/alpha/candles", params={"source": "nosuchvendor"})
    assert_problem(unknown, 400, mentions="nosuchvendor")
    assert_problem(
        client.get("/assets/alpha/candles", params={"source": "coingecko", "interval": "2h"}), 422
    )
    assert_problem(client.get("/assets/alpha/candles"), 422)  # a source is required


def test_consensus_candles_when_the_server_keeps_them(client: TestClient, alpha: Engine) -> None:
    with alpha.connect() as conn:
        kept = sa.inspect(conn).has_table("reference_prices")
    if not kept:
        response = client.get("/assets/alpha/candles", params={"source": "consensus"})
        assert_problem(response, 404, mentions="consensus")
        return
    rows = [
        {"as_of": at(5), "price": 100.0, "status": "ok"},
        {"as_of": at(25), "price": 104.0, "status": "ok"},
        {"as_of": at(35), "price": None, "status": "disputed"},  # no value published: skipped
        {"as_of": at(45), "price": 101.0, "status": "ok"},
    ]
    with alpha.begin() as conn:
        for row in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO reference_prices (asset_id, as_of, status, price_usd, "
                    "dispersion_bps, sources_used, sources_total, single_source, constituents, "
                    "computed_at) VALUES ('alpha', :as_of, :status, :price, NULL, 2, 2, :single, "
                    "'[]', :as_of)"
                ),
                {**row, "as_of": _stored(conn, row["as_of"]), "single": False},
            )
    body = get(
        client,
        source="consensus",
        interval="1h",
        **{"from": at(0).isoformat(), "to": at(60).isoformat()},
    )
    assert [
        (c["open"], c["high"], c["low"], c["close"], c["observations"], c["volume_24h_usd"])
        for c in body["data"]
    ] == [(100.0, 104.0, 100.0, 101.0, 3, None)]


def _stored(conn: sa.Connection, when: datetime) -> Any:
    """A time as the UTC column type stores it on this database."""
    return when if conn.dialect.name == "postgresql" else when.replace(tzinfo=None)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # array_agg is PG's
def test_both_open_close_methods_agree_on_postgresql(alpha: Engine) -> None:
    with alpha.connect() as conn:
        args: dict[str, Any] = {
            "source": "coingecko",
            "start": at(-60),
            "end": at(240),
            "limit": 100,
        }
        for width in (timedelta(minutes=5), timedelta(hours=1), timedelta(days=1)):
            by_array = candles(conn, "alpha", width=width, method="array_agg", **args)
            by_window = candles(conn, "alpha", width=width, method="window", **args)
            assert by_array == by_window
            assert by_array


def test_default_range_is_the_last_limit_buckets(client: TestClient, alpha: Engine) -> None:
    # Without `from`: the `limit` buckets before `to`, here 11:00 to 14:00.
    body = get(client, source="coingecko", interval="1h", limit=3, to=at(240).isoformat())
    assert [c["start"][11:16] for c in body["data"]] == ["11:00", "12:00"]
    assert body["meta"]["next_cursor"] is None
