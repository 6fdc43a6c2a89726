"""Coins listed without a ticker are real coins: loaded with symbol NULL, resolved by name and
id, on both databases; a record with neither a ticker nor a name is still quarantined."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.db import schema
from kasparro.etl.runner import run_source
from tests.helpers import settings_for

HEADER = "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"


def _write(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(r + "\n" for r in rows))
    return path


def test_a_coin_without_a_ticker_loads_and_links_by_name(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    one = _write(
        tmp_path / "one.csv",
        ",Arcium,1.50,15000000,100000,2026-05-12",
        ",,2.00,1000000,100,2026-05-12",  # neither ticker nor name: nothing to know it by
        "BTC,Bitcoin,80000,1600000000000,20000000000,2026-05-12",
    )
    two = _write(
        tmp_path / "two.csv",
        ",Arcium,1.51,15100000,100000,2026-05-12",
        "ARC,Arc Token,0.02,90000,10,2026-05-12",  # another coin, unlike Arcium in every way
    )
    settings = settings_for(
        database_url, csv_enabled=True, csv_path=one, csv_weird_enabled=True, csv_weird_path=two
    )
    results = [run_source(engine, settings, s, trigger="cli") for s in ("csv", "csv_weird")]
    assert [r.status for r in results] == ["success", "success"], [r.error for r in results]
    assert [r.records_loaded for r in results] == [2, 2]
    links = schema.asset_sources.c
    with engine.connect() as conn:
        arcium = conn.execute(
            sa.select(links.source, links.symbol, links.asset_id, links.match_method).where(
                links.name == "Arcium"
            )
        ).all()
        head = conn.execute(
            sa.select(schema.assets.c.symbol).where(schema.assets.c.asset_id == "arcium")
        ).scalar_one()
        quarantined = conn.execute(sa.select(schema.quarantine.c.reason)).scalars().all()
    assert {(r.source, r.symbol) for r in arcium} == {("csv", None), ("csv_weird", None)}
    assert {r.asset_id for r in arcium} == {"arcium"}  # one asset, found by name and id
    assert head is None
    assert len(quarantined) == 1


def test_the_api_serves_a_coin_without_a_ticker(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from kasparro.api.app import create_app

    path = _write(tmp_path / "one.csv", ",Arcium,1.50,15000000,100000,2026-05-12")
    settings = settings_for(database_url, csv_enabled=True, csv_path=path)
    assert run_source(engine, settings, "csv", trigger="cli").records_loaded == 1
    with TestClient(create_app(settings, engine)) as client:
        data = client.get("/data", params={"q": "arcium"}).json()["data"]
        assert [(row["name"], row["symbol"]) for row in data] == [("Arcium", None)]
        asset = client.get("/assets/arcium").json()
        assert (asset["name"], asset["symbol"]) == ("Arcium", None)
        assert client.get("/data", params={"symbol": "ARC"}).json()["data"] == []
