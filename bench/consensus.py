"""The consensus reference price: the lying-source table, and compute throughput.

    python -m bench.consensus [--assets 20000] [--table-assets 1000] [--seed 14]

1. The table: six sources report one seeded universe (kasparro.consensus.simulation); in each
   scenario every source lies in turn about every asset. Per scenario: the largest error of the
   reference price against the truth, how often the liar was excluded with the expected reason,
   and how many honest constituents were excluded.
2. Throughput on a scratch PostgreSQL database: `--assets` assets x 6 sources, 8 cycles of
   history (one source lying: a wrong mapping), written by COPY (not measured); then the
   store computes and writes every reference price (measured), and computes them again over
   unchanged data (measured: nothing is rewritten).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import scratch_postgres
from kasparro.consensus.method import Parameters
from kasparro.consensus.simulation import (
    EXPECTED_REASON,
    SCENARIOS,
    TOLERANCE,
    Universe,
    scenario_table,
)
from kasparro.consensus.store import compute
from kasparro.db import schema
from kasparro.db.engine import create_db_engine, write_transaction
from kasparro.load.sql import chunks, insert_rows

PARAMS = Parameters()


def table(assets: int, seed: int) -> list[dict[str, Any]]:
    outcomes = scenario_table(Universe(assets, seed=seed), PARAMS)
    rows: list[dict[str, Any]] = []
    for scenario in SCENARIOS:
        mine = [o for o in outcomes if o.scenario == scenario]
        rows.append(
            {
                "scenario": scenario,
                "runs": len(mine),
                "assets": sum(o.assets for o in mine),
                "max_error": max(o.max_error for o in mine),
                "named": sum(o.liar_named for o in mine),
                "reason": EXPECTED_REASON[scenario] or "-",
                "honest_excluded": sum(o.honest_excluded for o in mine),
                "mean_error": max(o.mean_error for o in mine),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        "  | scenario | assets x liars | reference price: max error vs truth | liar excluded, "
        "with reason | honest sources excluded | plain mean: max error |"
    )
    print("  | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        excluded = "-" if r["scenario"] == "honest" else f"{r['named']:,} / {r['assets']:,}"
        reason = f" `{r['reason']}`" if r["scenario"] != "honest" else ""
        print(
            f"  | {r['scenario']} | {r['assets']:,} | {r['max_error']:.3%} | {excluded}{reason} "
            f"| {r['honest_excluded']} | {r['mean_error']:.3%} |"
        )


def _seed_database(url: str, universe: Universe) -> int:
    """Assets, their six sources' latest values and 8 cycles of history, by COPY."""
    observations = universe.observations("wrong_mapping", "binance")
    now = universe.end
    latest: dict[tuple[str, str], Any] = {}
    history: list[dict[str, Any]] = []
    for o in observations:
        key = (o.source, f"{o.source}-{o.asset_id}")
        row = {
            "source": o.source,
            "source_asset_id": key[1],
            "observed_at": o.observed_at,
            "asset_id": o.asset_id,
            "price_usd": o.price_usd,
            "market_cap_usd": o.market_cap_usd,
            "volume_24h_usd": o.volume_24h_usd,
            "ingested_at": o.observed_at,
            "run_id": "bench",
            "raw_id": "0" * 64,
        }
        history.append(row)
        if key not in latest or latest[key]["observed_at"] < o.observed_at:
            latest[key] = row
    links = [
        {**row, "symbol": "X", "name": row["asset_id"], "match_method": "new", "match_score": 1.0}
        for row in latest.values()
    ]
    assets = [
        {"asset_id": a, "symbol": "X", "name": a, "created_at": now, "created_run_id": "bench"}
        for a in universe.asset_ids
    ]
    engine = create_db_engine(url)
    with write_transaction(engine) as conn:
        insert_rows(conn, schema.assets, assets)
        insert_rows(conn, schema.asset_sources, links)
        for part in chunks(history, 100_000):
            insert_rows(conn, schema.price_history, list(part))
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return len(history)


def throughput(assets: int, seed: int) -> dict[str, Any]:
    universe = Universe(assets, seed=seed, end=datetime.now(UTC).replace(microsecond=0))
    with scratch_postgres("kasparro_consensus") as url:
        started = time.perf_counter()
        history_rows = _seed_database(url, universe)
        print(
            f"  seeded {assets:,} assets x 6 sources, {history_rows:,} history rows in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        engine = create_db_engine(url)
        now = universe.end + timedelta(minutes=1)
        cpu = time.process_time()
        first = compute(engine, PARAMS, now=now)
        first_cpu = time.process_time() - cpu
        cpu = time.process_time()
        again = compute(engine, PARAMS, now=now)
        again_cpu = time.process_time() - cpu
        engine.dispose()
    statuses: dict[str, int] = defaultdict(int, first.statuses)
    return {
        "assets": first.assets,
        "first_seconds": first.seconds,
        "first_rate": first.assets / first.seconds,
        "first_cpu_seconds": first_cpu,
        "written": first.written,
        "again_seconds": again.seconds,
        "again_rate": again.assets / again.seconds,
        "again_cpu_seconds": again_cpu,
        "again_written": again.written,
        "ok": statuses["ok"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=20_000, help="Assets for throughput.")
    parser.add_argument("--table-assets", type=int, default=1_000, help="Assets for the table.")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)

    rows = table(args.table_assets, args.seed)
    print_table(rows)
    result = throughput(args.assets, args.seed)
    print(
        f"  compute and write {result['assets']:,} reference prices (PostgreSQL): "
        f"{result['first_seconds']:.2f} s, {result['first_rate']:,.0f} assets/s "
        f"({result['written']:,} rows, {result['ok']:,} ok); this process used "
        f"{result['first_cpu_seconds']:.2f} s of CPU"
    )
    print(
        f"  again over unchanged data: {result['again_seconds']:.2f} s, "
        f"{result['again_rate']:,.0f} assets/s ({result['again_written']} rows rewritten); "
        f"{result['again_cpu_seconds']:.2f} s of CPU"
    )
    worst = max(r["max_error"] for r in rows)
    named = all(r["named"] == r["assets"] for r in rows if r["scenario"] != "honest")
    return {
        **result,
        "table": rows,
        "worst_error": worst,
        "within_tolerance": worst <= TOLERANCE,
        "all_named": named,
    }


if __name__ == "__main__":
    main()
