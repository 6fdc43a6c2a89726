"""The measurements of `bench.scale` on a generated database (see bench/scale.py)."""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from bench.common import ROOT, api_server, scratch_postgres
from kasparro.api.queries.candles import candles
from kasparro.db import partitions
from kasparro.db.engine import create_db_engine
from kasparro.db.retention import drop_expired_months

RANDOM = random.Random(16)
# What `measure` can be asked for (bench.scale --parts), in the order it runs them.
PARTS = ("api", "open_close", "export", "ingest", "retention")


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", flush=True)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
        "n": len(ordered),
    }


def timed(call: Callable[[], Any], samples: int) -> dict[str, float]:
    call()  # one untimed, so the first sample pays no connection set-up
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


# How many canonical assets the database holds (bench.scale --assets): set by `measure`.
canonical = 10_000


def asset(consensus: bool = False) -> str:
    """A random generated asset; one in 100 has reference prices (bench.scale)."""
    n = (
        RANDOM.randrange(max(canonical // 100, 1)) * 100
        if consensus
        else RANDOM.randrange(canonical)
    )
    return f"asset-{n:05d}"


def measure(url: str, samples: int, parts: Sequence[str] = PARTS) -> dict[str, Any]:
    global canonical  # read once here, used by every sample's asset()
    engine = create_db_engine(url)
    now = datetime.now(UTC)
    results: dict[str, Any] = {"disk": disk(engine)}
    log(f"measure: disk {results['disk']}")
    with engine.connect() as conn:
        # The generated ones only (`asset-NNNNN`): the ingest measurement adds others.
        generated = "SELECT count(*) FROM assets WHERE asset_id LIKE 'asset-%'"
        canonical = int(conn.scalar(sa.text(generated)) or 1)
        consensus = sa.inspect(conn).has_table("reference_prices") and bool(
            conn.scalar(sa.text("SELECT count(*) FROM (SELECT 1 FROM reference_prices LIMIT 1) x"))
        )
    results["assets"] = canonical
    if "api" in parts:
        results["api"] = api_latencies(url, now, samples, consensus)
        log(f"measure: api {results['api']}")
    if "open_close" in parts:
        results["open_close"] = open_close_methods(engine, now, samples)
        log(f"measure: open/close methods {results['open_close']}")
    if "export" in parts:
        results["export"] = exports(url, engine, now)
        log(f"measure: export {results['export']}")
    if "ingest" in parts:
        results["ingest"] = ingest(url)
        log(f"measure: ingest {results['ingest']}")
    if "retention" in parts:
        results["retention"] = retention(engine, now)
        log(f"measure: retention {results['retention']}")
    engine.dispose()
    return results


def disk(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = int(
            conn.scalar(
                sa.text(
                    "SELECT sum(c.reltuples)::bigint FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'price_history'::regclass"
                )
            )
            or 0
        )
        heap, indexes = conn.execute(
            sa.text(
                "SELECT sum(pg_table_size(inhrelid)), sum(pg_indexes_size(inhrelid)) "
                "FROM pg_inherits WHERE inhparent = 'price_history'::regclass"
            )
        ).one()
        by_index: dict[str, Any] = dict(
            conn.execute(
                sa.text(
                    "SELECT i.inhparent::regclass::text, sum(pg_relation_size(i.inhrelid)) "
                    "FROM pg_inherits i WHERE i.inhparent IN (SELECT indexrelid FROM pg_index "
                    "WHERE indrelid = 'price_history'::regclass) GROUP BY 1"
                )
            ).all()
        )
    mb = 1024 * 1024
    return {
        "rows": rows,
        "table_mb": round(int(heap) / mb),
        "indexes_mb": round(int(indexes) / mb),
        "bytes_per_row": round((int(heap) + int(indexes)) / max(rows, 1), 1),
        "heap_bytes_per_row": round(int(heap) / max(rows, 1), 1),
        "index_mb": {name: round(int(size) / mb, 1) for name, size in by_index.items()},
    }


def api_latencies(url: str, now: datetime, samples: int, consensus: bool) -> dict[str, Any]:
    year, month, two_years = ((now - timedelta(days=d)).isoformat() for d in (365, 30, 729))
    to = now.isoformat()
    measured: dict[str, Any] = {}
    with api_server(url) as base, httpx.Client(base_url=base, timeout=60) as client:

        def get(path: str, **params: Any) -> Callable[[], Any]:
            def call() -> None:
                response = client.get(
                    path.format(asset=asset("consensus" in str(params))), params=params
                )
                response.raise_for_status()

            return call

        history = "/assets/{asset}/history"
        candle = "/assets/{asset}/candles"
        plans: dict[str, Callable[[], Any]] = {
            "history_1y_first_1000": get(
                history, source="coingecko", limit=1000, **{"from": year, "to": to}
            ),
            "candles_1h_30d": get(
                candle, source="coingecko", interval="1h", **{"from": month, "to": to}
            ),
            "candles_1d_2y": get(
                candle, source="coingecko", interval="1d", **{"from": two_years, "to": to}
            ),
            "data_limit_100": get("/data", limit=100),
            "assets_limit_100": get("/assets", limit=100),
            "bench_static_baseline": get("/__bench__/static"),
        }
        if consensus:
            plans["consensus_candles_1h_30d"] = get(
                candle, source="consensus", interval="1h", **{"from": month, "to": to}
            )
            plans["consensus_candles_1d_2y"] = get(
                candle, source="consensus", interval="1d", **{"from": two_years, "to": to}
            )
        for name, call in plans.items():
            measured[name] = timed(call, samples)
    base_p50 = measured["bench_static_baseline"]["p50_ms"]
    for name in ("data_limit_100", "assets_limit_100"):
        measured[name]["ratio_to_static"] = round(base_p50 / measured[name]["p50_ms"], 2)
    return measured


def open_close_methods(engine: sa.Engine, now: datetime, samples: int) -> dict[str, Any]:
    """The two ways of taking a bucket's first and last price, on the same queries."""
    found: dict[str, Any] = {}
    with engine.connect() as conn:
        for label, width, days in (
            ("1h_30d", timedelta(hours=1), 30),
            ("1d_2y", timedelta(days=1), 729),
        ):
            for method in ("array_agg", "window"):

                def call(method: Any = method, width: timedelta = width, days: int = days) -> None:
                    candles(
                        conn,
                        asset(),
                        source="coingecko",
                        width=width,
                        start=now - timedelta(days=days),
                        end=now,
                        limit=5000,
                        method=method,
                    )

                found[f"{label}_{method}"] = timed(call, samples)
    return found


def exports(url: str, engine: sa.Engine, now: datetime) -> dict[str, Any]:
    """A 30-day export of one source over HTTP (rows/s), and the CLI's peak RSS for about 1M
    and 10M rows (same process, only the range differs)."""
    found: dict[str, Any] = {}
    with api_server(url) as base:
        started = time.perf_counter()
        lines = 0
        params = {
            "from": (now - timedelta(days=30)).isoformat(),
            "to": now.isoformat(),
            "source": "coingecko",
        }
        with httpx.stream("GET", f"{base}/export/history", params=params, timeout=3600) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
    found["http_30d_one_source"] = {
        "rows": lines - 1,
        "seconds": round(seconds, 1),
        "rows_per_s": round((lines - 1) / seconds),
    }
    with engine.connect() as conn:
        per_day = (
            int(
                conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM price_history WHERE source = 'coingecko' "
                        "AND observed_at >= :lo AND observed_at < :hi"
                    ),
                    {"lo": now - timedelta(days=61), "hi": now - timedelta(days=1)},
                )
                or 60
            )
            / 60
        )
    for rows in (1_000_000, 10_000_000):  # as near as the history holds
        days = min(rows / per_day, 725)
        found[f"cli_{rows // 1_000_000}M"] = cli_export(url, now - timedelta(days=days), now)
    found["rss_growth_mb_1M_to_10M"] = round(
        found["cli_10M"]["peak_rss_mb"] - found["cli_1M"]["peak_rss_mb"], 1
    )
    return found


def cli_export(url: str, start: datetime, end: datetime) -> dict[str, Any]:
    stamp = "%Y-%m-%dT%H:%M:%S%z"
    command = [
        sys.executable, "-m", "kasparro.cli", "export", "history", "--source", "coingecko",
        "--from", start.strftime(stamp), "--to", end.strftime(stamp),
    ]  # fmt: skip
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines = 0
    while chunk := process.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"export failed with status {status}")
    return {
        "rows": lines - 1,
        "seconds": round(seconds, 1),
        "rows_per_s": round((lines - 1) / seconds),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def ingest(url: str) -> dict[str, Any]:
    """A 100,000-record CoinPaprika load into the full table, then into an empty database."""
    from bench.load import ours, settle

    full = ours(100_000, url, 2000)
    with scratch_postgres("kasparro_bench_scale_empty") as empty_url:
        settle(empty_url)
        empty = ours(100_000, empty_url, 2000)
    full_rate = full["processed"] / full["seconds"]
    empty_rate = empty["processed"] / empty["seconds"]
    return {
        "full_records_per_s": round(full_rate),
        "empty_records_per_s": round(empty_rate),
        "ratio": round(full_rate / empty_rate, 2),
    }


def retention(engine: sa.Engine, now: datetime) -> dict[str, Any]:
    """Drop the oldest month while a reader queries history without pause; its worst latency."""
    with engine.connect() as conn:
        oldest = partitions.months(conn)[0]
    reader = create_db_engine(str(engine.url.render_as_string(hide_password=False)))
    stop = threading.Event()
    latencies: list[float] = []

    def read() -> None:
        with reader.connect() as conn:
            while not stop.is_set():
                started = time.perf_counter()
                conn.execute(
                    sa.text(
                        "SELECT count(*) FROM price_history WHERE asset_id = :a "
                        "AND observed_at >= :lo"
                    ),
                    {"a": asset(), "lo": now - timedelta(days=30)},
                ).scalar()
                conn.commit()
                latencies.append((time.perf_counter() - started) * 1000)

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(2)
    before = len(latencies)
    started = time.perf_counter()
    dropped = drop_expired_months(engine, older_than=now - oldest.end, now=now)
    seconds = time.perf_counter() - started
    during = latencies[before:]
    time.sleep(1)
    stop.set()
    thread.join()
    reader.dispose()
    return {
        "dropped": dropped,
        "seconds": round(seconds, 3),
        "reader_during_drop": percentiles(during) if during else None,
        "reader_before": percentiles(latencies[:before]) if before else None,
    }
