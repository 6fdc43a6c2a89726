"""The command line with a wrong setting, a database it cannot reach, a port already taken: one
or two plain lines naming the setting, an exit status of their own, no traceback unless asked,
and nothing started (no migration, no run, no directory made)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from kasparro.cli import EXIT_ADDRESS, EXIT_CONFIG, EXIT_DATABASE
from kasparro.config import Settings
from kasparro.db import schema
from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import upgrade
from kasparro.etl.runner import run_source
from tests.helpers import settings_for

COMMANDS = [("serve",), ("etl", "run"), ("db", "upgrade")]
BAD_SETTINGS = [
    ("ETL_SCHEDULE", "61 * * * *", "crontab"),
    ("ETL_SCHEDULE", "every ten minutes", "crontab"),
    ("ETL_BATCH_SIZE", "0", "expected an integer 1-10000, got '0'"),
    ("API_PORT", "abc", "expected an integer 1-65535, got 'abc'"),
    ("COINGECKO_API_PLAN", "enterprise", "expected one of 'public', 'demo' or 'pro'"),
    ("LOG_LEVEL", "verbose", "expected one of DEBUG, INFO, WARNING, ERROR"),
]
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def _cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`kasparro ARGS` in `cwd` (no .env of the developer's), with only the settings in `env`."""
    base = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    base.update(
        DATABASE_URL=f"sqlite:///{cwd / 'k.db'}",
        COINGECKO_ENABLED="false",
        COINPAPRIKA_ENABLED="false",
        COLUMNS="200",
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "-m", "kasparro.cli", *args],
        env=base,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_plain(done: subprocess.CompletedProcess[str], code: int, *mentions: str) -> str:
    """Exit status `code`, at most two lines on stderr naming `mentions`, no traceback."""
    err = done.stderr.strip()
    assert done.returncode == code, (done.returncode, done.stdout, err)
    assert "Traceback" not in err + done.stdout, err
    assert 1 <= len(err.splitlines()) <= 2, err
    assert err.startswith("error: "), err
    for text in mentions:
        assert text in err, err
    return err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("name", "value", "expected"), BAD_SETTINGS)
def test_a_bad_setting_is_one_plain_line_naming_it_and_nothing_starts(
    tmp_path: Path, command: tuple[str, ...], name: str, value: str, expected: str
) -> None:
    done = _cli(tmp_path, *command, **{name: value})
    _assert_plain(done, EXIT_CONFIG, name, expected)
    assert not (tmp_path / "k.db").exists()  # refused before any migration


def test_every_refused_setting_is_named_on_the_one_line(tmp_path: Path) -> None:
    done = _cli(tmp_path, "serve", API_PORT="abc", LOG_LEVEL="verbose", ETL_BATCH_SIZE="0")
    _assert_plain(done, EXIT_CONFIG, "API_PORT", "LOG_LEVEL", "ETL_BATCH_SIZE")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://kasparro:Zq8-secret-Pw1@db.internal/kasparro",
        "not a url Zq8-secret-Pw1",
        "postgresql+nosuchdriver://kasparro:Zq8-secret-Pw1@db.internal/kasparro",
    ],
)
def test_a_malformed_database_url_is_refused_without_echoing_it(tmp_path: Path, url: str) -> None:
    done = _cli(tmp_path, "db", "upgrade", DATABASE_URL=url)
    _assert_plain(done, EXIT_CONFIG, "DATABASE_URL", "expected")
    assert "Zq8-secret-Pw1" not in done.stderr + done.stdout
    assert "db.internal" not in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_database_is_its_own_exit_status(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    url = "postgresql+psycopg://postgres:Zq8-secret-Pw1@127.0.0.1:1/x?connect_timeout=5"
    done = _cli(tmp_path, *command, DATABASE_URL=url)
    _assert_plain(done, EXIT_DATABASE, "DATABASE_URL", "cannot be reached")
    assert "Zq8-secret-Pw1" not in done.stderr + done.stdout


def test_a_missing_postgresql_database_is_named(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/kasparro_no_such_database_here"
    probe = create_db_engine(url.rsplit("/", 1)[0] + "/postgres")
    try:
        with probe.connect():
            pass
    except sa.exc.OperationalError:
        pytest.skip("PostgreSQL not reachable")
    finally:
        probe.dispose()
    done = _cli(tmp_path, "etl", "run", DATABASE_URL=url)
    _assert_plain(done, EXIT_DATABASE, "DATABASE_URL", "kasparro_no_such_database_here")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_sqlite_file_in_a_missing_directory_is_refused_and_not_created(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    done = _cli(tmp_path, *command, DATABASE_URL=f"sqlite:///{missing / 'k.db'}")
    _assert_plain(done, EXIT_CONFIG, "DATABASE_URL", str(missing))
    assert not (tmp_path / "nonexistent").exists()


def test_the_default_data_directory_is_still_created(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    done = subprocess.run(
        [sys.executable, "-m", "kasparro.cli", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "kasparro.db").is_file()


def test_debug_shows_the_traceback_and_keeps_the_exit_status(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--debug", "serve", API_PORT="abc")
    assert done.returncode == EXIT_CONFIG
    assert "Traceback" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: invalid settings: API_PORT")


def test_log_level_debug_shows_the_traceback_too(tmp_path: Path) -> None:
    done = _cli(tmp_path, "db", "upgrade", LOG_LEVEL="debug", ETL_BATCH_SIZE="0")
    assert done.returncode == EXIT_CONFIG
    assert "Traceback" in done.stderr


def test_the_exit_codes_are_in_the_help(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "Exit codes" in text
    for code in (EXIT_CONFIG, EXIT_DATABASE, EXIT_ADDRESS):
        assert f"{code} " in text
    assert "--debug" in text


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_taken_port_fails_before_any_run_starts(tmp_path: Path, taken_port: int) -> None:
    assert _cli(tmp_path, "db", "upgrade").returncode == 0  # so that runs could be recorded
    env = {"CSV_ENABLED": "true", "CSV_WEIRD_ENABLED": "true", "ETL_RUN_ON_START": "true"}
    done = _cli(tmp_path, "serve", "--port", str(taken_port), **env)
    _assert_plain(done, EXIT_ADDRESS, "API_PORT", str(taken_port), "already in use")
    engine = create_db_engine(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        with engine.connect() as conn:
            statuses = list(conn.scalars(sa.select(schema.etl_runs.c.status)))
    finally:
        engine.dispose()
    assert "running" not in statuses
    assert statuses == []  # no run even began


def test_a_taken_port_fails_before_migrations(tmp_path: Path, taken_port: int) -> None:
    done = _cli(tmp_path, "serve", "--port", str(taken_port))
    _assert_plain(done, EXIT_ADDRESS, "API_PORT")
    assert not (tmp_path / "k.db").exists()


# --- etl run: its progress hook, and a summary that never cuts a name or an error short --------


def test_the_runner_reports_each_committed_batch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    upgrade(url)
    settings = settings_for(url, csv_enabled=True, etl_batch_size=10)
    seen: list[tuple[str, int]] = []
    engine = create_db_engine(url)
    try:
        result = run_source(
            engine, settings, "csv", trigger="test", on_batch=lambda *a: seen.append(a)
        )
    finally:
        engine.dispose()
    assert result.status == "success"
    assert len(seen) == -(-result.records_processed // 10)  # a batch per 10 rows
    assert [records for _, records in seen] == sorted(records for _, records in seen)
    assert seen[-1][1] == result.records_processed
    assert all(label.startswith("markets.csv up to line") for label, _ in seen)


def test_the_summary_wraps_instead_of_truncating_and_json_is_whole(tmp_path: Path) -> None:
    missing = tmp_path / "a-rather-long-directory-name" / "and-a-long-file-name-markets.csv"
    env = {"CSV_ENABLED": "true", "CSV_WEIRD_ENABLED": "true", "CSV_WEIRD_PATH": str(missing)}
    done = _cli(tmp_path, "etl", "run", COLUMNS="50", **env)
    assert done.returncode == 1, done.stderr
    assert "…" not in done.stdout
    assert "csv_weird" in done.stdout and "failed" in done.stdout
    assert str(missing) in done.stdout.replace("\n", "")

    done = _cli(tmp_path, "etl", "run", "--json", **env)
    assert done.returncode == 1, done.stderr
    results = {r["source"]: r for r in json.loads(done.stdout)}
    assert results["csv"]["status"] == "success"
    assert results["csv_weird"]["status"] == "failed"
    assert str(missing) in results["csv_weird"]["error"]
