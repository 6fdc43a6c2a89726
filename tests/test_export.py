"""History exports (GET /export/history and `kasparro export history`) on SQLite and PostgreSQL:
every row once, in time order, filtered, CSV safe to open in a spreadsheet, Parquet exact."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.api.app import create_app
from kasparro.db import schema
from kasparro.export import HistoryExport, history_batches
from kasparro.export.formats import csv_cell
from tests.api.conftest import api_settings, assert_problem

T0 = datetime(2026, 10, 30, 22, 0, tzinfo=UTC)
# Ids a hostile upstream could send: a spreadsheet would evaluate them as formulas.
HOSTILE_IDS = ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]


@pytest.fixture
def history(engine: Engine) -> list[dict[str, Any]]:
    """Three days around a month's end (two partitions on PostgreSQL), two sources, hostile ids."""
    rows = []
    for step in range(36):  # every 2 hours for 3 days
        when = T0 + timedelta(hours=2 * step)
        for n, source in enumerate(("coingecko", "coinpaprika")):
            asset = ("alpha", "beta", "gamma")[step % 3]
            rows.append(
                {
                    "source": source,
                    "source_asset_id": HOSTILE_IDS[step % 6] if n else f"{asset}-cg",
                    "observed_at": when + timedelta(minutes=n),
                    "asset_id": asset,
                    "price_usd": 1000.0 / (step + 1) + n,
                    "market_cap_usd": None if step % 4 == 0 else 1e12 + step,
                    "volume_24h_usd": 0.000123 * (step + 1),
                    "ingested_at": when + timedelta(seconds=30),
                    "run_id": f"run-{step}",
                    "raw_id": f"{step:03d}{n}".ljust(64, "a"),
                }
            )
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.price_history), rows)
    return rows


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def expected_csv(rows: list[dict[str, Any]]) -> list[list[str]]:
    ordered = sorted(rows, key=lambda r: (r["observed_at"], r["source"], r["source_asset_id"]))
    columns = [
        "observed_at",
        "asset_id",
        "source",
        "source_asset_id",
        "price_usd",
        "market_cap_usd",
        "volume_24h_usd",
        "ingested_at",
        "run_id",
    ]
    return [columns] + [[csv_cell(r[c]) for c in columns] for r in ordered]


NUMBERS = (4, 5, 6)  # price, market cap, volume: compared as the floats they read back as


def normalized(lines: list[list[str]]) -> list[list[Any]]:
    """PostgreSQL writes 1e+12 where Python writes 1000000000000.0: the same number."""
    return [lines[0]] + [
        [float(v) if i in NUMBERS and v else v for i, v in enumerate(line)] for line in lines[1:]
    ]


def test_csv_export_is_every_row_in_time_order(
    engine: Engine, database_url: str, history: list[dict[str, Any]]
) -> None:
    with TestClient(create_app(api_settings(database_url), engine)) as client:
        response = client.get(
            "/export/history", params={"from": iso(T0), "to": iso(T0 + timedelta(days=4))}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(response.text)))
    assert normalized(lines) == normalized(expected_csv(history))
    assert len(lines) == 1 + 72


def test_csv_cells_cannot_become_formulas(
    engine: Engine, database_url: str, history: list[dict[str, Any]]
) -> None:
    with TestClient(create_app(api_settings(database_url), engine)) as client:
        text = client.get(
            "/export/history",
            params={"from": iso(T0), "to": iso(T0 + timedelta(days=4)), "source": "coinpaprika"},
        ).text
    ids = {line[3] for line in list(csv.reader(io.StringIO(text)))[1:]}
    assert ids == {"'" + hostile for hostile in HOSTILE_IDS}
    # Numbers and times are never prefixed: a spreadsheet still reads them as numbers.
    first = list(csv.reader(io.StringIO(text)))[1]
    assert float(first[4]) == 1000.0 + 1
    assert first[0] == "2026-10-30T22:01:00Z"
    assert csv_cell(-1.5) == "-1.5"  # a negative number (never a price) stays a number
    assert csv_cell("-1.5") == "'-1.5"  # the same characters as text are text


def test_filters_by_source_assets_and_range(
    engine: Engine, database_url: str, history: list[dict[str, Any]]
) -> None:
    start, end = T0 + timedelta(hours=4), T0 + timedelta(hours=30)
    params: dict[str, Any] = {
        "from": iso(start),
        "to": iso(end),
        "source": "coingecko",
        "asset_id": ["alpha", "gamma"],
    }
    with TestClient(create_app(api_settings(database_url), engine)) as client:
        lines = list(csv.reader(io.StringIO(client.get("/export/history", params=params).text)))
    wanted = [
        r
        for r in history
        if r["source"] == "coingecko"
        and r["asset_id"] in ("alpha", "gamma")
        and start <= r["observed_at"] < end
    ]
    assert normalized(lines) == normalized(expected_csv(wanted))
    assert 0 < len(wanted) < len(history) / 4


def test_parquet_export_round_trips(
    engine: Engine, database_url: str, history: list[dict[str, Any]]
) -> None:
    with TestClient(create_app(api_settings(database_url), engine)) as client:
        response = client.get(
            "/export/history",
            params={"from": iso(T0), "to": iso(T0 + timedelta(days=4)), "format": "parquet"},
        )
    assert response.status_code == 200, response.text
    table = pq.read_table(io.BytesIO(response.content))
    got = table.to_pylist()
    ordered = sorted(history, key=lambda r: (r["observed_at"], r["source"], r["source_asset_id"]))
    assert [
        (g["observed_at"], g["source_asset_id"], g["price_usd"], g["market_cap_usd"], g["run_id"])
        for g in got
    ] == [
        (r["observed_at"], r["source_asset_id"], r["price_usd"], r["market_cap_usd"], r["run_id"])
        for r in ordered
    ]


def test_batches_hold_a_bounded_number_of_rows(
    engine: Engine, history: list[dict[str, Any]]
) -> None:
    job = HistoryExport(start=T0, end=T0 + timedelta(days=4))
    batches = list(history_batches(engine, job, batch_rows=5))
    assert max(len(b) for b in batches) == 5
    assert sum(len(b) for b in batches) == len(history)
    times = [row[0] for batch in batches for row in batch]
    assert times == sorted(times)


def test_refused_requests(engine: Engine, database_url: str) -> None:
    with TestClient(create_app(api_settings(database_url), engine)) as client:
        backwards = {"from": iso(T0), "to": iso(T0 - timedelta(hours=1))}
        assert_problem(client.get("/export/history", params=backwards), 400, mentions="`to`")
        assert_problem(client.get("/export/history", params={"from": iso(T0)}), 422)
        unknown = {"from": iso(T0), "to": iso(T0 + timedelta(days=1)), "source": "nosuchvendor"}
        assert_problem(client.get("/export/history", params=unknown), 400, mentions="nosuchvendor")


def test_parquet_without_pyarrow_says_so(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if the extra were not installed
    params = {"from": iso(T0), "to": iso(T0 + timedelta(days=1)), "format": "parquet"}
    with TestClient(create_app(api_settings(database_url), engine)) as client:
        assert_problem(
            client.get("/export/history", params=params), 503, mentions="kasparro[parquet]"
        )


def test_cli_writes_the_same_file(
    engine: Engine, database_url: str, history: list[dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "history.csv"
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "json"}
    command = [sys.executable, "-m", "kasparro.cli", "export", "history"]
    window = ["--from", "2026-10-30", "--to", "2026-11-03T00:00:00Z"]
    done = subprocess.run(
        [*command, *window, "--output", str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    written = list(csv.reader(out.open(newline="")))
    assert normalized(written) == normalized(expected_csv(history))
    # Parquet without pyarrow: one plain line, no traceback.
    blocked = tmp_path / "no_pyarrow"
    blocked.mkdir()
    (blocked / "pyarrow.py").write_text("raise ImportError('pyarrow is not installed')\n")
    refused = subprocess.run(
        [*command, *window, "--format", "parquet"],
        env={**env, "PYTHONPATH": str(blocked)},
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert "kasparro[parquet]" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_range_of_millennia_reads_only_what_can_hold_rows(
    engine: Engine, history: list[dict[str, Any]]
) -> None:
    job = HistoryExport(start=datetime(1, 1, 2, tzinfo=UTC), end=datetime(9999, 12, 30, tzinfo=UTC))
    assert sum(len(b) for b in history_batches(engine, job)) == len(history)
