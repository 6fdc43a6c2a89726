"""`kasparro doctor`: the settings, the database and its migrations, and each enabled source's
own check, against the fake upstreams; a row per check, exit 1 when any is an error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kasparro.config import Settings
from kasparro.db.migrate import upgrade
from kasparro.fakes.server import FakeUpstreams
from kasparro.sources.csv_files import CsvSource

SETTING_NAMES = {name.upper() for name in Settings.model_fields}
SOURCES = ("coingecko", "coinpaprika", "csv", "csv_weird")
GOOD_KEY = "demo-key-Qv7kZ2pXr9"
WRONG_KEY = "wrong-key-Lm3nB8vC1"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstreams]:
    with FakeUpstreams(coins=20) as upstreams:
        yield upstreams


@pytest.fixture
def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    return url


def _doctor(tmp_path: Path, fake: FakeUpstreams, **env: str) -> tuple[int, dict[str, str]]:
    """Exit status, and each check's line of the table (check name -> the rest of its line)."""
    values = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    values.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'k.db'}",
        COINGECKO_BASE_URL=fake.coingecko_url,
        COINPAPRIKA_BASE_URL=fake.coinpaprika_url,
        HTTP_MAX_ATTEMPTS="1",
        COLUMNS="250",
    )
    values.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "kasparro.cli", "doctor"],
        env=values,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    rows: dict[str, str] = {}
    check = None
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().split("│")]
        if len(cells) != 5:  # the borders, and three cells between them
            continue
        cells = cells[1:4]
        if cells[1] in ("ok", "warning", "error"):
            check = cells[0]
            rows[check] = f"{cells[1]} {cells[2]}"
        elif check is not None and not cells[0] and not cells[1]:  # a detail wrapped
            rows[check] += f" {cells[2]}"
    return done.returncode, rows


def test_everything_up_is_all_ok(tmp_path: Path, fake: FakeUpstreams, migrated: str) -> None:
    code, rows = _doctor(tmp_path, fake)
    assert code == 0, rows
    expected = {"configuration", "database", "migrations", *(f"source {s}" for s in SOURCES)}
    assert set(rows) == expected
    assert all(line.startswith("ok ") for line in rows.values()), rows


def test_a_wrong_key_on_a_plan_that_needs_one_is_an_error_naming_the_source(
    tmp_path: Path, migrated: str
) -> None:
    with FakeUpstreams(coins=20, coingecko_plan="demo", coingecko_key=GOOD_KEY) as fake:
        plan = {"COINGECKO_API_PLAN": "demo"}
        code, rows = _doctor(tmp_path, fake, COINGECKO_API_KEY=WRONG_KEY, **plan)
        assert code == 1
        assert rows["source coingecko"].startswith("error coingecko:"), rows
        assert "COINGECKO_API_KEY" in rows["source coingecko"]
        assert WRONG_KEY not in " ".join(rows.values())
        assert rows["source coinpaprika"].startswith("ok "), rows

        code, rows = _doctor(tmp_path, fake, COINGECKO_API_KEY=GOOD_KEY, **plan)
        assert code == 0, rows


def test_a_plan_that_needs_a_key_without_one_is_an_error(
    tmp_path: Path, fake: FakeUpstreams, migrated: str
) -> None:
    code, rows = _doctor(tmp_path, fake, COINGECKO_API_PLAN="pro")
    assert code == 1
    assert rows["source coingecko"].startswith("error "), rows
    assert "COINGECKO_API_KEY" in rows["source coingecko"]


def test_a_wrong_coinpaprika_key_is_an_error(tmp_path: Path, migrated: str) -> None:
    with FakeUpstreams(coins=20, coinpaprika_key=GOOD_KEY) as fake:
        code, rows = _doctor(tmp_path, fake, COINPAPRIKA_API_KEY=WRONG_KEY)
        assert code == 1
        assert rows["source coinpaprika"].startswith("error coinpaprika:"), rows
        assert WRONG_KEY not in " ".join(rows.values())


def test_a_missing_csv_file_is_an_error(tmp_path: Path, fake: FakeUpstreams, migrated: str) -> None:
    missing = tmp_path / "gone.csv"
    code, rows = _doctor(tmp_path, fake, CSV_WEIRD_PATH=str(missing))
    assert code == 1
    assert rows["source csv_weird"].startswith("error "), rows
    assert str(missing) in rows["source csv_weird"]
    assert rows["source csv"].startswith("ok "), rows


def test_a_disabled_source_is_not_checked(
    tmp_path: Path, fake: FakeUpstreams, migrated: str
) -> None:
    code, rows = _doctor(
        tmp_path, fake, CSV_WEIRD_PATH=str(tmp_path / "gone.csv"), CSV_WEIRD_ENABLED="false"
    )
    assert code == 0, rows
    assert "source csv_weird" not in rows


def test_a_database_not_migrated_is_a_warning_or_an_error(
    tmp_path: Path, fake: FakeUpstreams
) -> None:
    (tmp_path / "k.db").touch()
    code, rows = _doctor(tmp_path, fake)
    assert code == 0, rows
    assert rows["migrations"].startswith("warning "), rows
    code, rows = _doctor(tmp_path, fake, MIGRATE_ON_START="false")
    assert code == 1
    assert rows["migrations"].startswith("error ") and "kasparro db upgrade" in rows["migrations"]


def test_an_unreachable_database_is_an_error(tmp_path: Path, fake: FakeUpstreams) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=5"
    code, rows = _doctor(tmp_path, fake, DATABASE_URL=url)
    assert code == 1
    assert rows["database"].startswith("error DATABASE_URL"), rows
    assert "migrations" not in rows


def test_a_refused_setting_is_an_error_row(tmp_path: Path, fake: FakeUpstreams) -> None:
    code, rows = _doctor(tmp_path, fake, API_PORT="abc")
    assert code == 1
    assert rows == {"configuration": rows["configuration"]}
    assert "API_PORT: expected an integer 1-65535" in rows["configuration"]


def test_the_csv_check_reads_only_the_header(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("symbol,name,price_usd,date\nBTC,Bitcoin,1,2024-01-01\n")
    assert CsvSource("csv", good).check().status == "ok"
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("symbole,nom,prix_é,date\n".encode("latin-1"))
    check = CsvSource("csv", latin1).check()
    assert check.status == "error" and "UTF-8" in check.detail
    header = tmp_path / "header.csv"
    header.write_text("ticker,price\nBTC,1\n")
    check = CsvSource("csv", header).check()
    assert check.status == "error" and "name" in check.detail
    check = CsvSource("csv", tmp_path).check()
    assert check.status == "error" and "directory" in check.detail
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert CsvSource("csv", empty).check().status == "error"
