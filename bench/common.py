"""Shared bench plumbing: a scratch PostgreSQL database, a server process, wrk."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import upgrade

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def scratch_postgres(prefix: str = "kasparro_bench") -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards."""
    admin = create_db_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def api_server(database_url: str, **env: str) -> Iterator[str]:
    """`kasparro serve` in its own process (no scheduled ETL), bench endpoints on."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ETL_RUN_ON_START": "false",
        "ETL_SCHEDULE": "0 0 1 1 *",
        "KASPARRO_BENCH_ENDPOINTS": "1",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "API_RATE_LIMIT_PER_MINUTE": "0",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "kasparro.cli", "serve", "--port", str(port)],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("the API server did not start within 60 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def fake_upstreams(coins: int, seed: int = 7) -> Iterator[tuple[str, str]]:
    """`kasparro fakes` in its own process, so its memory is never counted as ours.

    Yields the CoinGecko and CoinPaprika base URLs once both answer.
    """
    coingecko_port, coinpaprika_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kasparro.cli",
            "fakes",
            "--coins",
            str(coins),
            "--seed",
            str(seed),
            "--coingecko-port",
            str(coingecko_port),
            "--coinpaprika-port",
            str(coinpaprika_port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    urls = (
        f"http://127.0.0.1:{coingecko_port}/api/v3",
        f"http://127.0.0.1:{coinpaprika_port}/v1",
    )
    try:
        deadline = time.monotonic() + 600
        for port in (coingecko_port, coinpaprika_port):
            while True:
                if process.poll() is not None:
                    raise RuntimeError("the fake upstreams exited before serving")
                try:
                    url = f"http://127.0.0.1:{port}/__admin__/requests"
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the fake upstreams did not start within 600 s")
                time.sleep(0.2)
        yield urls
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def wrk(url: str, *, seconds: int = 10, connections: int = 16, threads: int = 1) -> WrkResult:
    """Drive `url` with wrk over loopback; latency percentiles from `--latency`."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed for the API benchmark: apt-get install wrk")
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return WrkResult(
        requests_per_second=rps,
        p50_ms=_latency_ms(out, "50%"),
        p99_ms=_latency_ms(out, "99%"),
        non_2xx=int(non_2xx_match.group(1)) if non_2xx_match else 0,
    )


def _latency_ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {percentile} latency in wrk output:\n{out}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
