"""Soak: many scheduled runs under random upstream faults and SIGKILLs; nothing lost or doubled.

The fakes run in their own process. Each epoch moves their clock on (new prices, new
`last_updated`) and appends a day of rows to a CSV file; then, source by source, `kasparro etl
run` is started as the scheduler would, with random faults armed in the fakes (429 bursts, 500s,
truncated JSON, Cloudflare HTML pages, slow pages) and, often, a SIGKILL at a random moment; it
is started again until a run of that source succeeds. A reference database gets one clean run
per source and epoch of the same data. At the end both databases must hold the same facts:
raw payloads, canonical identity (which source assets share an asset), latest values, history,
quarantine and checkpoints.

    python -m bench.soak [--epochs 8] [--min-kills 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.common import ROOT, fake_upstreams, scratch_postgres
from kasparro.db import schema
from kasparro.db.engine import create_db_engine

SOURCES = ("coingecko", "coinpaprika", "csv")
COINS = 1200
ATTEMPTS = 40  # per source and epoch; far more than the faults can use up


def _env(database_url: str, coingecko: str, coinpaprika: str, csv_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("COINGECKO_", "CSV_"))}
    return {
        **keep,
        "DATABASE_URL": database_url,
        "COINGECKO_BASE_URL": coingecko,
        "COINGECKO_PER_PAGE": "100",
        "COINGECKO_MAX_PAGES": "20",
        "COINGECKO_RATE_LIMIT_PER_MINUTE": "100000",
        "COINPAPRIKA_BASE_URL": coinpaprika,
        "COINPAPRIKA_RATE_LIMIT_PER_SECOND": "1000",
        "CSV_PATH": str(csv_path),
        "CSV_WEIRD_ENABLED": "false",
        "ETL_BATCH_SIZE": "150",
        "ETL_LOCK_LEASE_SECONDS": "5",
        "HTTP_MAX_RETRY_SECONDS": "10",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
    }


def _random_faults(rng: random.Random) -> list[dict[str, Any]]:
    faults: list[dict[str, Any]] = [
        {"kind": "slow", "times": 10_000, "seconds": 0.03}  # stretches runs so kills land inside
    ]
    for _ in range(rng.randint(0, 3)):
        kind = rng.choice(["rate_limit", "server_error", "truncated", "html"])
        fault: dict[str, Any] = {"kind": kind, "times": rng.randint(1, 3)}
        if kind == "rate_limit":
            fault["retry_after"] = 1
        faults.append(fault)
    return faults


class Soak:
    def __init__(self, rng: random.Random, admin: str, env: dict[str, str]) -> None:
        self.rng = rng
        self.admin = admin
        self.env = env
        self.kills = 0
        self.failed_runs = 0
        self.runs = 0
        self.faults = 0

    def run_until_success(self, source: str) -> None:
        for _ in range(ATTEMPTS):
            faults = _random_faults(self.rng)
            self.faults += sum(f["times"] for f in faults[1:])
            httpx.post(f"{self.admin}/faults", json=faults).raise_for_status()
            try:
                process = _start(source, self.env)
                self.runs += 1
                if self.rng.random() < 0.6:
                    time.sleep(self.rng.uniform(0.3, 3.0))
                    if process.poll() is None:
                        process.send_signal(signal.SIGKILL)
                        self.kills += 1
                code = process.wait(timeout=600)
            finally:
                httpx.delete(f"{self.admin}/faults").raise_for_status()
            if code == 0:
                return
            self.failed_runs += code != -signal.SIGKILL
        raise SystemExit(f"{source}: no successful run in {ATTEMPTS} attempts")


def _start(source: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kasparro.cli", "etl", "run", "--source", source],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _clean_run(source: str, env: dict[str, str]) -> None:
    code = _start(source, env).wait(timeout=600)
    if code != 0:
        raise SystemExit(f"reference run of {source} failed ({code})")


def _append_day(path: Path, day: date, rng: random.Random) -> None:
    if not path.exists():
        path.write_text("symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n")
    with path.open("a") as handle:
        for n in range(40):
            price = round(rng.uniform(0.5, 2.0) * (n + 1), 6)
            handle.write(f"SK{n},Soak Coin {n},{price},{price * 1e6:.0f},1000,{day.isoformat()}\n")


def facts(database_url: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """What must match, as multisets (so a doubled row shows), without run ids and clocks."""
    engine = create_db_engine(database_url)
    with engine.connect() as conn:
        members: dict[str, list[tuple[str, str]]] = {}
        for source, said, asset_id in conn.execute(
            sa.select(
                schema.asset_sources.c.source,
                schema.asset_sources.c.source_asset_id,
                schema.asset_sources.c.asset_id,
            )
        ):
            members.setdefault(asset_id, []).append((source, said))

        def rows(*columns: Any) -> Counter[tuple[Any, ...]]:
            return Counter(tuple(row) for row in conn.execute(sa.select(*columns)))

        result = {
            "raw_payloads": rows(schema.raw_payloads.c.raw_id),
            # Identity as a partition: which source assets share a canonical asset.
            "identity": Counter(tuple(sorted(group)) for group in members.values()),
            "latest": rows(
                schema.asset_sources.c.source,
                schema.asset_sources.c.source_asset_id,
                schema.asset_sources.c.price_usd,
                schema.asset_sources.c.observed_at,
            ),
            "history": rows(
                schema.price_history.c.source,
                schema.price_history.c.source_asset_id,
                schema.price_history.c.observed_at,
                schema.price_history.c.price_usd,
            ),
            "quarantine": rows(schema.quarantine.c.source, schema.quarantine.c.raw_id),
            "checkpoints": Counter(
                (source, repr(sorted(cursor.items())))
                for source, cursor in conn.execute(
                    sa.select(schema.etl_checkpoints.c.source, schema.etl_checkpoints.c.cursor)
                )
            ),
        }
    engine.dispose()
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=8, help="At least this many epochs.")
    parser.add_argument("--min-kills", type=int, default=20, help="Go on until this many kills.")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.monotonic()

    with (
        tempfile.TemporaryDirectory() as scratch,
        scratch_postgres("kasparro_soak") as soak_url,
        scratch_postgres("kasparro_soak_ref") as reference_url,
        fake_upstreams(COINS) as (coingecko, coinpaprika),
    ):
        csv_path = Path(scratch) / "prices.csv"
        admin = coinpaprika.rsplit("/", 1)[0] + "/__admin__"
        soak = Soak(rng, admin, _env(soak_url, coingecko, coinpaprika, csv_path))
        reference_env = _env(reference_url, coingecko, coinpaprika, csv_path)
        epoch = 0
        while epoch < args.epochs or soak.kills < args.min_kills:
            epoch += 1
            if epoch > 1:
                httpx.post(f"{admin}/advance", params={"seconds": 600}).raise_for_status()
            _append_day(csv_path, date(2026, 6, 1) + timedelta(days=epoch), rng)
            for source in SOURCES:
                soak.run_until_success(source)
                _clean_run(source, reference_env)
            print(f"  epoch {epoch}: {soak.runs} runs so far, {soak.kills} killed", flush=True)
        got, expected = facts(soak_url), facts(reference_url)

    lost = {name: sum((expected[name] - got[name]).values()) for name in expected}
    extra = {name: sum((got[name] - expected[name]).values()) for name in expected}
    print(
        f"soak: {epoch} epochs x {len(SOURCES)} sources, {soak.runs} runs, "
        f"{soak.kills} SIGKILLed, {soak.faults} upstream faults armed "
        f"(429, 500, truncated JSON, HTML), {soak.failed_runs} runs failed on them, "
        f"{time.monotonic() - started:.0f} s"
    )
    for name in expected:
        print(
            f"  {name:<13} {sum(expected[name].values()):>8,} expected   "
            f"lost {lost[name]}   duplicated or extra {extra[name]}"
        )
    verdict = "OK" if not any(lost.values()) and not any(extra.values()) else "MISMATCH"
    print(f"  {verdict}: zero lost and zero duplicated" if verdict == "OK" else f"  {verdict}")
    if verdict != "OK":
        raise SystemExit(1)
    return {
        "epochs": epoch,
        "runs": soak.runs,
        "kills": soak.kills,
        "faults": soak.faults,
        "lost": lost,
        "extra": extra,
    }


if __name__ == "__main__":
    main()
