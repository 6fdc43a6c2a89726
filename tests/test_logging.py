"""One log format whatever wrote the line; libraries' chatter only at DEBUG; a failed run is an
error, not an info line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from kasparro.etl.runner import run_source
from kasparro.logging import configure_logging
from tests.helpers import settings_for


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    configure_logging("INFO", "auto")


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_library_records_share_the_json_format_and_chatter_waits_for_debug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade 0002 -> 0003")
    logging.getLogger("httpx").info("HTTP Request: GET http://x/ 200")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job was missed")
    logging.getLogger("kasparro.something").info("plain %s", "line")
    out = capsys.readouterr().err
    assert all(line.startswith("{") for line in out.splitlines())  # nothing but JSON
    lines = _lines(out)
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("apscheduler.scheduler", "warning"),
        ("kasparro.something", "info"),
    ]
    assert lines[1]["event"] == "plain line" and "timestamp" in lines[1]

    configure_logging("DEBUG", "json")
    logging.getLogger("httpx").info("HTTP Request: GET http://x/ 200")
    assert [line["logger"] for line in _lines(capsys.readouterr().err)] == ["httpx"]


def test_a_failed_run_is_logged_as_an_error(
    database_url: str, engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("WARNING", "json")
    settings = settings_for(database_url, csv_enabled=True, csv_path=tmp_path / "missing.csv")
    assert run_source(engine, settings, "csv", trigger="test").status == "failed"
    finished = [
        line for line in _lines(capsys.readouterr().err) if line["event"] == "etl_run_finished"
    ]
    assert [(line["level"], line["status"]) for line in finished] == [("error", "failed")]
