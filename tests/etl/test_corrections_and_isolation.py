"""Corrections replace the served value and keep a revision; the latest value is always the
newest valid observation; a batch the database refuses in part loads the rest; quarantine
accepts anything; strangers see a classified error, admins the detail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.db import schema
from kasparro.db.engine import write_transaction
from kasparro.etl.runner import run_source
from kasparro.identity.crosswalk import load_crosswalk
from kasparro.load.isolation import load_isolating
from kasparro.load.loader import store_raw
from kasparro.load.quarantine import store_quarantine
from kasparro.models import Observation, RawRecord, Rejection
from tests.api.conftest import ADMIN_KEY, api_settings
from tests.helpers import count, settings_for

HEADER = "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"


def _csv(path: Path, *rows: str) -> None:
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows))


def _latest(engine: Engine, source: str = "csv") -> dict[str, tuple[float, datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.asset_sources.c.source_asset_id,
                schema.asset_sources.c.price_usd,
                schema.asset_sources.c.observed_at,
            ).where(schema.asset_sources.c.source == source)
        )
        return {said: (price, observed_at) for said, price, observed_at in rows}


def test_a_correction_replaces_the_value_and_history_keeps_the_revision(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    settings = settings_for(database_url, csv_enabled=True, csv_path=path, csv_settle_seconds=0)
    _csv(path, "AAA,Alpha,1.50,100,10,2026-01-01", "AAA,Alpha,1.75,100,10,2026-01-02")
    assert run_source(engine, settings, "csv", trigger="test").status == "success"

    # The vendor rewrites its file: the older day and the latest day both corrected.
    _csv(path, "AAA,Alpha,1.55,100,10,2026-01-01", "AAA,Alpha,1.80,100,10,2026-01-02")
    result = run_source(engine, settings, "csv", trigger="test")

    assert result.status == "success" and result.records_revised == 2
    assert _latest(engine)["aaa-alpha"][0] == 1.80
    with engine.connect() as conn:
        history = conn.execute(
            sa.select(
                schema.price_history.c.observed_at, schema.price_history.c.price_usd
            ).order_by(schema.price_history.c.observed_at)
        ).all()
        revisions = conn.execute(
            sa.select(
                schema.price_history_revisions.c.price_usd,
                schema.price_history_revisions.c.revised_run_id,
            ).order_by(schema.price_history_revisions.c.observed_at)
        ).all()
    assert [price for _, price in history] == [1.55, 1.80]  # replaced, not duplicated
    assert [price for price, _ in revisions] == [1.50, 1.75]
    assert {run for _, run in revisions} == {result.run_id}

    # The same values again change nothing.
    path.write_text(path.read_text() + "\n")
    again = run_source(engine, settings, "csv", trigger="test")
    assert again.records_revised == 0 and count(engine, schema.price_history_revisions) == 2


def test_a_future_row_never_becomes_the_latest_value(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    settings = settings_for(database_url, csv_enabled=True, csv_path=path, csv_settle_seconds=0)
    soon = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    _csv(
        path,
        "AAA,Alpha,1.50,100,10,2026-01-01",
        "AAA,Alpha,999,100,10,2099-01-01",  # an upstream clock error
        f"BBB,Beta,2.00,100,10,{soon}",  # within the tolerance: a clock a little ahead
    )
    run_source(engine, settings, "csv", trigger="test")
    _csv(path, "AAA,Alpha,1.50,100,10,2026-01-01", "AAA,Alpha,1.60,100,10,2026-01-02")
    run_source(engine, settings, "csv", trigger="test")

    latest = _latest(engine)
    assert latest["aaa-alpha"][0] == 1.60
    assert latest["bbb-beta"][0] == 2.00
    with engine.connect() as conn:
        codes = conn.execute(sa.select(schema.quarantine.c.reason_code)).scalars().all()
    assert codes == ["future_timestamp"]


def _observation(n: int, price: float | None = 1.0) -> tuple[Observation, RawRecord]:
    raw = RawRecord.of("csv", {"row": {"n": n, "price": price}})
    record = Observation(
        "csv",
        f"coin-{n}",
        f"C{n}",
        f"Coin {n}",
        price,  # type: ignore[arg-type]  # a value validation would have refused
        None,
        None,
        datetime(2026, 1, 2, tzinfo=UTC),
        raw.raw_id,
    )
    return record, raw


def test_records_the_database_refuses_are_quarantined_and_the_rest_loaded(
    engine: Engine,
) -> None:
    # NOT NULL refuses a missing price on both databases: what no check before it foresaw.
    pairs = [_observation(n, None if n in (0, 25, 52) else 1.0 + n) for n in range(53)]
    store_raw(engine, "csv", [raw for _, raw in pairs], "run-1")
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        outcome, refused = load_isolating(
            conn,
            source="csv",
            records=[record for record, _ in pairs],
            rejections=[],
            crosswalk=load_crosswalk(None),
            run_id="run-1",
            now=now,
        )
    assert refused == 3 and outcome.quarantined == 3 and outcome.loaded == 50
    assert outcome.processed == 53
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.quarantine.c.source_asset_id,
                schema.quarantine.c.reason_code,
                schema.quarantine.c.payload,
            )
        ).all()
    assert sorted(said for said, _, _ in rows) == ["coin-0", "coin-25", "coin-52"]
    assert {code for _, code, _ in rows} == {"database_rejected"}
    assert all(payload["row"]["price"] is None for _, _, payload in rows)  # the real payload
    assert count(engine, schema.price_history) == 50


def test_quarantine_accepts_anything(engine: Engine) -> None:
    body = {"name": "x" * 200_000, "id": "\x00evil"}
    hostile = Rejection(
        raw=RawRecord.of("csv", body),
        reason="bad \x00 reason \x1b[31m" + "y" * 10_000,
        source_asset_id="\x00" + "z" * 10_000,
        code="unstorable_text" + "\x00" * 40,
    )
    with write_transaction(engine) as conn:
        assert store_quarantine(conn, "csv", [hostile], "run-1", datetime.now(UTC)) == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.quarantine)).one()
    assert len(row.source_asset_id) <= 200 and "\x00" not in row.source_asset_id
    assert len(row.reason) <= 2_000 and "\x00" not in row.reason and "\x1b" not in row.reason
    assert len(row.reason_code) <= 32
    assert row.payload["truncated"] is True and row.payload["bytes"] > 200_000


def test_strangers_see_a_classified_error_and_admins_the_detail(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "prices.csv"
    settings = api_settings(database_url, csv_enabled=True, csv_path=path, csv_settle_seconds=0)
    _csv(path, "AAA,Alpha,1.50,100,10,2026-01-01")
    run_source(engine, settings, "csv", trigger="test")
    with engine.begin() as conn:  # a database that breaks under the run, whatever the record
        conn.execute(sa.text("DROP TABLE price_history_revisions"))
    _csv(path, "AAA,Alpha,1.55,100,10,2026-01-01")
    try:
        failed = run_source(engine, settings, "csv", trigger="test")
    finally:  # the PostgreSQL test database is shared by the session: put the table back
        with engine.begin() as conn:
            schema.price_history_revisions.create(conn)

    assert failed.status == "failed"
    assert failed.error == (
        f"database error while loading prices.csv up to line 2 (run {failed.run_id})"
    )
    with TestClient(create_app(settings, engine)) as client:
        listed = client.get("/runs", params={"status": "failed"}).json()["data"][0]
        public = client.get(f"/runs/{failed.run_id}").json()
        health = client.get("/health").text
        admin = client.get(f"/runs/{failed.run_id}", headers={"X-API-Key": ADMIN_KEY}).json()
    assert listed["error"] == failed.error and "error_detail" not in listed
    assert public["error"] == failed.error and public["error_detail"] is None
    for seen in (str(listed), str(public), health):
        assert "price_history_revisions" not in seen and "INSERT" not in seen
    assert "price_history_revisions" in admin["error_detail"]
