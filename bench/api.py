"""API benchmark: GET /data against a bare endpoint on the same server, and deep keyset paging.

PostgreSQL is seeded set-based (generate_series) with SOURCE_ASSETS source assets, as many
canonical assets, and HISTORY_PER_ASSET history rows each. One `kasparro serve` process (one
worker, no scheduled ETL) serves both endpoints; wrk drives them over loopback in turn, in the
same run:

- `/data?limit=100` against `/__bench__/static`, a fixed 100-row body shaped like /data that
  goes through the same middleware and serializer without the database (target ratio >= 0.4);
- the first page of /data against a page 500,000 rows deep reached by `cursor` (target
  <= 1.5x the first page's latency), with the same depth by `offset` beside it for contrast.

    python -m bench.api [--source-assets 600000] [--seconds 10]
"""

from __future__ import annotations

import argparse
from typing import Any

import sqlalchemy as sa

from bench.common import WrkResult, api_server, scratch_postgres, wrk
from kasparro.api.queries.data import DataFilters
from kasparro.api.routes.data import encode_cursor
from kasparro.db.engine import create_db_engine

SOURCES = ("coingecko", "coinpaprika", "csv")
DEPTH = 500_000
HISTORY_PER_ASSET = 2


def seed(database_url: str, source_assets: int) -> dict[str, int]:
    """Assets, their source rows (spread over three sources) and history, in three statements."""
    engine = create_db_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO assets (asset_id, symbol, name, created_at, created_run_id) "
                "SELECT 'asset-' || lpad(n::text, 7, '0'), 'S' || (n % 5000), 'Asset ' || n, "
                "now(), 'seed' FROM generate_series(1, :n) AS n"
            ),
            {"n": source_assets},
        )
        conn.execute(
            sa.text(
                "INSERT INTO asset_sources (source, source_asset_id, asset_id, symbol, name, "
                "price_usd, market_cap_usd, volume_24h_usd, observed_at, ingested_at, run_id, "
                "raw_id, match_method, match_score) "
                "SELECT (ARRAY['coingecko','coinpaprika','csv'])[1 + n % 3], "
                "'coin-' || lpad(n::text, 7, '0'), 'asset-' || lpad(n::text, 7, '0'), "
                "'S' || (n % 5000), 'Asset ' || n, 1 + n / 1000.0, n * 1000.0, n * 10.0, "
                "now() - interval '1 minute', now(), 'seed', md5(n::text) || md5(n::text), "
                "'new', 0 FROM generate_series(1, :n) AS n"
            ),
            {"n": source_assets},
        )
        conn.execute(
            sa.text(
                "INSERT INTO price_history (source, source_asset_id, observed_at, asset_id, "
                "price_usd, market_cap_usd, volume_24h_usd, ingested_at, run_id, raw_id) "
                "SELECT s.source, s.source_asset_id, s.observed_at - k * interval '10 minutes', "
                "s.asset_id, s.price_usd * (1 + k / 100.0), s.market_cap_usd, s.volume_24h_usd, "
                "now(), 'seed', s.raw_id FROM asset_sources s, generate_series(0, :k - 1) AS k"
            ),
            {"k": HISTORY_PER_ASSET},
        )
        for source in SOURCES:
            conn.execute(
                sa.text(
                    "INSERT INTO etl_checkpoints (source, cursor, run_id, updated_at) "
                    "VALUES (:s, '{}', 'seed', now())"
                ),
                {"s": source},
            )
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE"))
        counts = {
            table: int(conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
            for table in ("assets", "asset_sources", "price_history")
        }
    engine.dispose()
    return counts


def deep_cursor(database_url: str, depth: int) -> str:
    """The cursor /data would hand out after `depth` rows, in its own (source, id) order."""
    engine = create_db_engine(database_url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT source, source_asset_id FROM asset_sources "
                "ORDER BY source, source_asset_id OFFSET :d LIMIT 1"
            ),
            {"d": depth - 1},
        ).one()
    engine.dispose()
    return encode_cursor((row[0], row[1]), DataFilters().fingerprint())


def _line(label: str, result: WrkResult) -> str:
    return (
        f"  {label:<42} {result.requests_per_second:>9,.0f} req/s   "
        f"p50 {result.p50_ms:7.2f} ms   p99 {result.p99_ms:7.2f} ms"
        + (f"   non-2xx {result.non_2xx}" if result.non_2xx else "")
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-assets", type=int, default=600_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if args.source_assets <= DEPTH:
        raise SystemExit(f"--source-assets must exceed the paging depth {DEPTH:,}")

    with scratch_postgres("kasparro_bench_api") as url:
        counts = seed(url, args.source_assets)
        cursor = deep_cursor(url, DEPTH)
        with api_server(url) as base:

            def run(path: str, connections: int = args.connections) -> WrkResult:
                wrk(f"{base}{path}", seconds=2, connections=connections)  # warm-up
                return wrk(f"{base}{path}", seconds=args.seconds, connections=connections)

            bare = run("/__bench__/static")
            data = run("/data?limit=100")
            # Latency of single requests in sequence: one connection, no queueing.
            first = run("/data?limit=100", connections=1)
            deep = run(f"/data?limit=100&cursor={cursor}", connections=1)
            offset = run(f"/data?limit=100&offset={DEPTH}", connections=1)

    ratio = data.requests_per_second / bare.requests_per_second
    depth_ratio = deep.p50_ms / first.p50_ms
    print(
        f"api: PostgreSQL with {counts['asset_sources']:,} source assets, "
        f"{counts['assets']:,} assets, {counts['price_history']:,} history rows; "
        f"wrk {args.seconds} s, {args.connections} connections, one server process"
    )
    print(_line("bare /__bench__/static (100 fixed rows)", bare))
    print(_line("GET /data?limit=100", data))
    print(f"  ratio /data / bare: {ratio:.2f} (target >= 0.40)")
    print("  paging, one connection:")
    print(_line("first page", first))
    print(_line(f"cursor {DEPTH:,} rows deep", deep))
    print(_line(f"offset {DEPTH:,} rows deep (contrast)", offset))
    print(f"  deep cursor / first page p50: {depth_ratio:.2f} (target <= 1.50)")
    return {
        "bare_rps": bare.requests_per_second,
        "data_rps": data.requests_per_second,
        "ratio": ratio,
        "data_p50_ms": data.p50_ms,
        "data_p99_ms": data.p99_ms,
        "first_p50_ms": first.p50_ms,
        "deep_cursor_p50_ms": deep.p50_ms,
        "deep_offset_p50_ms": offset.p50_ms,
        "depth_ratio": depth_ratio,
    }


if __name__ == "__main__":
    main()
