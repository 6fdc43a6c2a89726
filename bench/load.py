"""Load benchmark: CoinPaprika-shaped records end to end into PostgreSQL, against a raw COPY.

Ours: fetch /tickers from the fake over HTTP (streamed), parse, validate, check drift, resolve
identity, load raw payloads, canonical assets, latest rows, history and the checkpoint.
Baseline, in the same run and database: COPY of exactly the rows our load wrote (read back
from its tables) into empty tables of the same shape, indexes and constraints included.

Memory: each size runs in a fresh child process that reports its own peak RSS plus the peaks
of the processes the load starts (the fork server and the fetch process; the fakes run in a
process of their own and are not counted), so the bound "100k may use at most 100 MB more than
10k" compares like with like. Peaks of different processes are summed, an upper bound.

    python -m bench.load [--records 100000] [--small 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from psycopg.sql import SQL, Identifier

from bench.common import fake_upstreams, scratch_postgres
from kasparro.config import Settings
from kasparro.db.engine import create_db_engine
from kasparro.db.schema import metadata
from kasparro.etl.prefetch import Prefetcher
from kasparro.etl.runner import run_source, warm_up

# In dependency order: a foreign key's target is copied first.
WRITTEN = ("raw_payloads", "assets", "asset_sources", "price_history", "etl_checkpoints")


def ours(records: int, database_url: str, batch_size: int) -> dict[str, Any]:
    # The universe has ~3% CoinGecko-only coins; size it so /tickers holds `records` items.
    with fake_upstreams(coins=int(records / 0.97) + 1) as (_, coinpaprika_url):
        # Ask once untimed (the fake builds and caches its /tickers body on first request),
        # streamed and discarded so the warm-up adds nothing to this process's peak RSS.
        with httpx.stream("GET", f"{coinpaprika_url}/tickers", timeout=600) as response:
            response.raise_for_status()
            for _ in response.iter_bytes(1 << 16):
                pass
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            coingecko_enabled=False,
            csv_enabled=False,
            csv_weird_enabled=False,
            coinpaprika_base_url=coinpaprika_url,
            coinpaprika_rate_limit_per_second=1000,
            etl_batch_size=batch_size,
            http_timeout_seconds=120,
        )
        engine = create_db_engine(database_url)
        with SpawnedPeaks() as spawned:
            # The fork server that fetch processes come from is up, as in a running `kasparro
            # serve` (process start-up is not timed, this interpreter's neither).
            warm_up()
            with Prefetcher[None](_nothing) as ready:
                list(ready)
            started = time.perf_counter()
            result = run_source(engine, settings, "coinpaprika", trigger="bench")
            seconds = time.perf_counter() - started
        engine.dispose()
    if result.status != "success":
        raise SystemExit(f"load failed: {result.error}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "processed": result.records_processed,
        "loaded": result.records_loaded,
        "seconds": seconds,
        "own_peak_rss_mb": own,
        "spawned_peak_rss_mb": spawned.total_mb,
        "peak_rss_mb": own + spawned.total_mb,
    }


class SpawnedPeaks:
    """Peak RSS (VmHWM) of every process started below this one while in the block, read every
    50 ms until each exits; processes that existed before (the fakes) are not counted."""

    def __init__(self) -> None:
        self._before = _descendants(os.getpid())
        self._peaks: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @property
    def total_mb(self) -> float:
        return sum(self._peaks.values())

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            for pid in _descendants(os.getpid(), skip=self._before):
                peak = _high_water_mb(pid)
                if peak is not None:
                    self._peaks[pid] = max(peak, self._peaks.get(pid, 0.0))

    def __enter__(self) -> SpawnedPeaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def _descendants(root: int, skip: set[int] | None = None) -> set[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found and child not in (skip or set()):
                found.add(child)
                todo.append(child)
    return found


def _high_water_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def _nothing() -> Iterator[None]:
    yield None


def settle(database_url: str) -> None:
    """Let PostgreSQL finish the background work of what came before (dirty pages, autovacuum of
    freshly loaded tables), so neither measurement pays for the other."""
    engine = create_db_engine(database_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for table in WRITTEN:
            conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
        conn.execute(sa.text("CHECKPOINT"))
    engine.dispose()


def raw_copy(database_url: str) -> dict[str, Any]:
    """COPY the rows our load wrote into same-shaped empty tables (indexes, constraints and
    foreign keys included); time the COPYs only."""
    engine = create_db_engine(database_url)
    rows_copied: dict[str, int] = {}
    seconds = 0.0
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        for table in WRITTEN:
            conn.execute(sa.text(f"CREATE TABLE copy_{table} (LIKE {table} INCLUDING ALL)"))
            # LIKE leaves foreign keys out; the rows must pass the same checks as ours did.
            for fk in metadata.tables[table].foreign_keys:
                conn.execute(
                    sa.text(
                        f"ALTER TABLE copy_{table} ADD FOREIGN KEY ({fk.parent.name}) "
                        f"REFERENCES copy_{fk.column.table.name} ({fk.column.name})"
                    )
                )
            conn.commit()
            with raw.cursor() as cursor:
                buffer = bytearray()
                # COPY (SELECT ...): PostgreSQL refuses `COPY table TO` on a partitioned table.
                read = SQL("COPY (SELECT * FROM {}) TO STDOUT").format(Identifier(table))
                with cursor.copy(read) as out:
                    for chunk in out:
                        buffer += chunk
                started = time.perf_counter()
                with cursor.copy(f"COPY copy_{table} FROM STDIN") as into:
                    into.write(bytes(buffer))
                raw.commit()
                seconds += time.perf_counter() - started
            count = sa.select(sa.func.count()).select_from(sa.table(f"copy_{table}"))
            rows_copied[table] = int(conn.scalar(count) or 0)
    history_only = rows_copied["price_history"]
    return {"seconds": seconds, "rows": rows_copied, "history_rows": history_only}


def child(records: int, batch_size: int) -> None:
    with scratch_postgres("kasparro_bench_load") as url:
        settle(url)
        mine = ours(records, url, batch_size)
        settle(url)
        baseline = raw_copy(url)
    print(json.dumps({"ours": mine, "copy": baseline}))


def run_child(records: int, batch_size: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.load", "--child", str(records), "--batch", str(batch_size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    # The product's default batch size (ETL_BATCH_SIZE), unless told otherwise.
    default_batch = Settings.model_fields["etl_batch_size"].default
    parser.add_argument("--batch", type=int, default=default_batch)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.batch)
        return {}

    big = run_child(args.records, args.batch)
    small = run_child(args.small, args.batch)
    ours_rate = big["ours"]["processed"] / big["ours"]["seconds"]
    copy_rate = big["ours"]["processed"] / big["copy"]["seconds"]
    ratio = ours_rate / copy_rate
    growth = big["ours"]["peak_rss_mb"] - small["ours"]["peak_rss_mb"]
    print(f"load: {big['ours']['processed']:,} CoinPaprika records, batches of {args.batch}")
    print(f"  ours, end to end (HTTP, parse, validate, resolve, load): {ours_rate:,.0f} records/s")
    written = ", ".join(f"{t} {n:,}" for t, n in big["copy"]["rows"].items())
    print(f"  raw COPY of the same rows ({written}): {copy_rate:,.0f} records/s")
    print(f"  ratio ours / COPY: {ratio:.2f} (target >= 0.50)")
    print(
        f"  peak RSS (this process + fork server + fetch process): "
        f"{small['ours']['peak_rss_mb']:.0f} MB at {args.small:,} records, "
        f"{big['ours']['peak_rss_mb']:.0f} MB at {args.records:,}: +{growth:.0f} MB "
        f"(bound: +100 MB; the spawned processes: {big['ours']['spawned_peak_rss_mb']:.0f} MB)"
    )
    return {
        "records": big["ours"]["processed"],
        "ours_records_per_s": ours_rate,
        "copy_records_per_s": copy_rate,
        "ratio": ratio,
        "rss_small_mb": small["ours"]["peak_rss_mb"],
        "rss_big_mb": big["ours"]["peak_rss_mb"],
        "rss_growth_mb": growth,
    }


if __name__ == "__main__":
    main()
