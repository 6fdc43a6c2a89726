"""Console benchmark: each /ui page's server time and weight on a large database.

PostgreSQL is seeded as for the API benchmark (bench/api.py: 600,000 source assets, as many
assets, 1,200,000 history rows), then given what the console shows beside them: runs of every
source (the last two of each wrote the history rows, so a comparison has 200,000 observations a
side) with the comparison the ETL stores as each run finishes, quarantined records, drift
events, anomalies and identity reviews. One `kasparro serve` process serves the pages; each is
requested in sequence over one connection.

- server time: the page's own `Server-Timing` (queries and rendering, from the middleware's
  start), p50 and p95 over the requests (target p50 <= 50 ms); a page slower than that stops
  after PAGE_SECONDS;
- two runs that are not one after the other: a pair's first request computes the comparison
  from both runs' history rows and stores it, every later one reads it back. Both are timed:
  FIRST_REQUESTS first requests (the stored pair deleted before each, outside the timing), then
  the page's repeated requests as for every page;
- weight: the HTML plus every stylesheet and script it loads, uncompressed (target <= 300 KB).

    python -m bench.ui [--source-assets 600000] [--requests 30]
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from bench import api
from bench.common import api_server, scratch_postgres
from kasparro.db.engine import create_db_engine
from kasparro.db.schema import etl_runs, run_comparisons
from kasparro.etl.run_changes import record_run_changes

RUNS_PER_SOURCE = 48
QUARANTINED = 30_000
DRIFT_EVENTS = 300
ANOMALIES = 1_000
REVIEWS = 3_000
TARGET_MS = 50.0
PAGE_SECONDS = 20.0
MIN_REQUESTS = 5
FIRST_REQUESTS = 5
TARGET_KB = 300.0
_ASSET_RE = re.compile(r'(?:href|src)="(/ui/static/[^"]+)"')


def run_id(source: str, number: int) -> str:
    return f"run-{source}-{number:04d}"


def seed_console(database_url: str) -> None:
    """Runs, quarantine, drift, anomalies and reviews beside bench/api.py's assets and history."""
    engine = create_db_engine(database_url)
    sources = list(api.SOURCES)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO etl_runs (run_id, source, trigger, status, started_at, finished_at, "
                "records_processed, records_loaded, records_unchanged, records_quarantined, "
                "records_revised, batches_committed, duration_ms, error, failure_point) "
                "SELECT 'run-' || s || '-' || lpad(i::text, 4, '0'), s, "
                "CASE WHEN i % 5 = 0 THEN 'api' ELSE 'schedule' END, "
                "CASE WHEN i % 17 = 0 THEN 'failed' WHEN i % 7 = 0 THEN 'degraded' "
                "ELSE 'success' END, "
                "now() - (:runs - i) * interval '10 minutes', "
                "now() - (:runs - i) * interval '10 minutes' + interval '20 seconds', "
                "200000, 1000 + i, 199000 - i, CASE WHEN i % 7 = 0 THEN 25 ELSE 0 END, 0, 100, "
                "20000 + i * 10, "
                "CASE WHEN i % 17 = 0 THEN 'upstream error: HTTP 502 after 5 attempts' "
                "WHEN i % 7 = 0 THEN '25 records quarantined' END, "
                "CASE WHEN i % 17 = 0 THEN 'fetch' END "
                "FROM unnest(CAST(:sources AS text[])) AS s, generate_series(1, :runs) AS i"
            ),
            {"runs": RUNS_PER_SOURCE, "sources": sources},
        )
        # The history's two observations per source asset: the previous run and the latest.
        conn.execute(
            sa.text(
                "UPDATE price_history SET run_id = 'run-' || source || '-' || lpad(("
                "CASE WHEN observed_at = (SELECT max(observed_at) FROM price_history) "
                "THEN :runs ELSE :runs - 1 END)::text, 4, '0')"
            ),
            {"runs": RUNS_PER_SOURCE},
        )
        conn.execute(
            sa.text(
                "INSERT INTO quarantine (source, raw_id, source_asset_id, reason, reason_code, "
                "payload, run_id, created_at) "
                "SELECT (CAST(:sources AS text[]))[1 + n % 3], md5('q' || n) || md5(n::text), "
                "'bad-' || n, 'price_usd: not a number', "
                "(ARRAY['ambiguous_number','not_a_number','missing_price','bad_timestamp'])"
                "[1 + n % 4], json_build_object('id', 'bad-' || n, 'price', 'N/A'), "
                "'run-' || (CAST(:sources AS text[]))[1 + n % 3] || '-' || "
                "lpad((1 + n % :runs)::text, 4, '0'), now() - n * interval '1 second' "
                "FROM generate_series(1, :n) AS n"
            ),
            {"n": QUARANTINED, "runs": RUNS_PER_SOURCE, "sources": sources},
        )
        conn.execute(
            sa.text(
                "INSERT INTO drift_events (run_id, source, kind, field, detail, confidence, "
                "action, items, created_at) "
                "SELECT 'run-coinpaprika-' || lpad((1 + n % :runs)::text, 4, '0'), 'coinpaprika', "
                "'new', 'field_' || n, 'a field the source started sending', 0, 'noted', 100, "
                "now() - n * interval '1 minute' FROM generate_series(1, :n) AS n"
            ),
            {"n": DRIFT_EVENTS, "runs": RUNS_PER_SOURCE},
        )
        conn.execute(
            sa.text(
                "INSERT INTO anomalies (run_id, source, kind, asset_id, detail, value, baseline, "
                "created_at) "
                "SELECT 'run-coingecko-' || lpad((1 + n % :runs)::text, 4, '0'), 'coingecko', "
                "'price_outlier', 'asset-' || lpad((n * 97)::text, 7, '0'), "
                "'price 40% away from the other sources'' median', 1.4, 1.0, "
                "now() - n * interval '1 minute' FROM generate_series(1, :n) AS n"
            ),
            {"n": ANOMALIES, "runs": RUNS_PER_SOURCE},
        )
        conn.execute(
            sa.text(
                "INSERT INTO identity_reviews (source, source_asset_id, asset_id, reason, "
                "candidates, run_id, created_at) "
                "SELECT 'coinpaprika', 'coin-' || lpad((n * 3 + 2)::text, 7, '0'), "
                "'asset-' || lpad((n * 3 + 2)::text, 7, '0'), 'two candidates score alike', "
                "'[]', 'run-coinpaprika-0001', now() - n * interval '1 minute' "
                "FROM generate_series(1, :n) AS n"
            ),
            {"n": REVIEWS},
        )
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        seeded = list(conn.scalars(sa.select(etl_runs.c.run_id).order_by(etl_runs.c.started_at)))
    # What the ETL writes as each run finishes: its comparison with the run before it.
    for each in seeded:
        record_run_changes(engine, each)
    # As autovacuum leaves a database at rest (statistics, visibility map), so that it does not
    # run during the measurements instead.
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


@dataclass(frozen=True)
class PageFigures:
    name: str
    path: str
    status: int
    p50_ms: float
    p95_ms: float
    html_kb: float
    weight_kb: float
    first_p50_ms: float | None = None  # a pair's first request: computed and stored


def server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
    if match is None:
        raise RuntimeError(f"no Server-Timing header (status {response.status_code})")
    return float(match.group(1))


def first_requests(
    client: httpx.Client, database_url: str, path: str, pair: tuple[str, str]
) -> float:
    """p50 of the pair's first request: its stored comparison deleted before each (untimed),
    and checked to be stored again by the request."""
    engine = create_db_engine(database_url)
    stored = (run_comparisons.c.run_a_id == pair[0]) & (run_comparisons.c.run_b_id == pair[1])
    times = []
    for _ in range(FIRST_REQUESTS):
        with engine.begin() as conn:
            conn.execute(sa.delete(run_comparisons).where(stored))
        times.append(server_ms(client.get(path)))
        with engine.connect() as conn:
            if conn.scalar(sa.select(sa.func.count()).where(stored)) != 1:
                raise RuntimeError(f"{path}: the first request did not store the comparison")
    engine.dispose()
    return statistics.median(times)


def measure(
    client: httpx.Client, name: str, path: str, requests: int, first_ms: float | None = None
) -> PageFigures:
    """Warm the page up, then request it `requests` times; its server times and its weight."""
    for _ in range(3):
        client.get(path)
    times: list[float] = []
    response = client.get(path)
    deadline = time.monotonic() + PAGE_SECONDS
    # `requests` each, but a slow page stops after PAGE_SECONDS (and MIN_REQUESTS).
    while len(times) < requests and (len(times) < MIN_REQUESTS or time.monotonic() < deadline):
        response = client.get(path)
        times.append(server_ms(response))
    html = len(response.content)
    assets = sum(len(client.get(p).content) for p in sorted(set(_ASSET_RE.findall(response.text))))
    times.sort()
    return PageFigures(
        name=name,
        path=path,
        status=response.status_code,
        p50_ms=statistics.median(times),
        p95_ms=times[min(len(times) - 1, round(len(times) * 0.95))],
        html_kb=html / 1000,
        weight_kb=(html + assets) / 1000,
        first_p50_ms=first_ms,
    )


# Pairs with no comparison recorded as a run finished. Only the last two runs of a source wrote
# history rows (200,000 each): the run two before the latest wrote none, and B before A is not
# consecutive either, reading both runs' rows.
NOT_CONSECUTIVE = {
    "compare, not consecutive (A wrote none)": (
        run_id("coinpaprika", RUNS_PER_SOURCE - 2),
        run_id("coinpaprika", RUNS_PER_SOURCE),
    ),
    "compare, not consecutive (B before A)": (
        run_id("coinpaprika", RUNS_PER_SOURCE),
        run_id("coinpaprika", RUNS_PER_SOURCE - 1),
    ),
}


def compare_path(run_a: str, run_b: str) -> str:
    return f"/ui/runs/compare?a={run_a}&b={run_b}"


def pages(source_assets: int) -> dict[str, str]:
    latest = run_id("coinpaprika", RUNS_PER_SOURCE)
    previous = run_id("coinpaprika", RUNS_PER_SOURCE - 1)
    return {
        "overview": "/ui",
        "runs": "/ui/runs",
        "runs, filtered": "/ui/runs?source=coinpaprika&status=success&trigger=schedule",
        "run": f"/ui/runs/{latest}",
        f"compare ({source_assets // len(api.SOURCES):,} observations a side)": (
            f"/ui/runs/compare?a={previous}&b={latest}"
        ),
        # Not consecutive (see NOT_CONSECUTIVE): computed and stored by the first request.
        **{name: compare_path(*pair) for name, pair in NOT_CONSECUTIVE.items()},
        "assets": "/ui/assets",
        "search by ticker": "/ui/assets?q=S4242",
        "search by name": f"/ui/assets?q=Asset%20{source_assets * 7 // 10}&names=true",
        # Opt-in ("Search inside names too"): a substring reads every name, as no index serves it.
        "search inside names": f"/ui/assets?q=sset%20{source_assets * 7 // 10}&anywhere=true",
        "asset": f"/ui/assets/asset-{source_assets * 7 // 10:07d}",
        "data problems": "/ui/problems",
        "data problems, filtered": "/ui/problems?source=csv&reason_code=missing_price",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-assets", type=int, default=600_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args(argv)

    with scratch_postgres("kasparro_bench_ui") as url:
        counts = api.seed(url, args.source_assets)
        seed_console(url)
        with api_server(url) as base, httpx.Client(base_url=base, timeout=120) as client:
            chosen = pages(args.source_assets)
            firsts = {
                name: first_requests(client, url, chosen[name], pair)
                for name, pair in NOT_CONSECUTIVE.items()
            }
            figures = [
                measure(client, name, path, args.requests, firsts.get(name))
                for name, path in chosen.items()
            ]

    print(
        f"ui: PostgreSQL with {counts['asset_sources']:,} source assets, "
        f"{counts['price_history']:,} history rows, {RUNS_PER_SOURCE * len(api.SOURCES)} runs, "
        f"{QUARANTINED:,} quarantined, {REVIEWS:,} reviews; {args.requests} requests a page, "
        "one connection, one server process"
    )
    print(f"  {'page':<40} {'status':>6} {'p50 ms':>8} {'p95 ms':>8} {'HTML KB':>8} {'KB':>7}")
    for f in figures:
        print(
            f"  {f.name:<40} {f.status:>6} {f.p50_ms:>8.1f} {f.p95_ms:>8.1f} "
            f"{f.html_kb:>8.1f} {f.weight_kb:>7.1f}"
        )
    for f in figures:
        if f.first_p50_ms is not None:
            print(
                f"  {f.name}: first request (computed from both runs' rows, then stored) "
                f"p50 {f.first_p50_ms:.1f} ms over {FIRST_REQUESTS}; every later request "
                f"(read back) p50 {f.p50_ms:.1f} ms (the row above)"
            )
    slow = [f.name for f in figures if f.p50_ms > TARGET_MS]
    heavy = [f.name for f in figures if f.weight_kb > TARGET_KB]
    slow_first = [f.name for f in figures if (f.first_p50_ms or 0.0) > TARGET_MS]
    print(
        f"  over {TARGET_MS:.0f} ms p50: {', '.join(slow) or 'none'}; "
        f"first requests over {TARGET_MS:.0f} ms p50: {', '.join(slow_first) or 'none'}; "
        f"over {TARGET_KB:.0f} KB: {', '.join(heavy) or 'none'}"
    )
    return {
        "pages": {f.name: f.__dict__ for f in figures},
        "max_p50_ms": max(f.p50_ms for f in figures),
        "max_weight_kb": max(f.weight_kb for f in figures),
        "slow": slow,
        "slow_first": slow_first,
        "heavy": heavy,
    }


if __name__ == "__main__":
    main()
