"""Scale benchmark (`make bench-scale`, not in CI): years of history in PostgreSQL.

    python -m bench.scale [--rows 100000000] [--assets 10000] [--database kasparro_scale]
                          [--phase all] [--parts api,open_close,export,ingest,retention]

`generate` makes the database (dropped first if it exists) with the production migrations, then
writes, with SQL alone (generate_series): `--assets` canonical assets (10,000 by default), each
with a CoinGecko and a CoinPaprika source asset (their latest values), and `--rows` history rows
over the two years to now, in time order as the ETL writes them, month by month, each month's
table filled before it is attached (so its indexes are built once, by the attach), then
VACUUM ANALYZE. Where the consensus table (reference_prices) exists, one asset in 100 gets its
reference price at the same cadence. The full size is 100M rows over 20,000 source assets (5,000
rows each); a smaller database with the same rows per asset (the same per-asset queries) and a
tenth of the disk: `--rows 10000000 --assets 1000 --database kasparro_scale_small`.

`measure` (on an existing database) times, as p50/p99 over `--samples` requests, each on a
random asset, through a `kasparro serve` process over HTTP: one asset's history over a year,
candles 1h over 30 days and 1d over 2 years (one source, and the consensus), /data and /assets;
a 30-day export of one source (rows/s) and the RSS growth of `kasparro export history` from 1M
to 10M rows; a 100,000-record CoinPaprika load with the table full against the same load into an
empty database; retention dropping the oldest month, with a reader's worst latency meanwhile;
disk per history row and the size of each index. `--parts` picks some of these (`api` is the
HTTP latencies; retention drops a month, so leave it out to measure the same database again).

Start the full run in the background and read the log: it takes hours on two cores.
    nohup python -m bench.scale > /tmp/bench-scale.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import ADMIN_URL
from bench.scale_measure import PARTS, measure
from kasparro.db import partitions
from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import upgrade

CANONICAL = 10_000
SOURCES = ("coingecko", "coinpaprika")
DAYS = 730
CONSENSUS_SHARE = 100  # one canonical asset in this many gets reference prices


def database_url(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# generate
# ---------------------------------------------------------------------------------------------


def generate(name: str, rows: int, now: datetime, assets: int = CANONICAL) -> dict[str, Any]:
    admin = create_db_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = database_url(name)
    upgrade(url)
    engine = create_db_engine(url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    step = step_seconds(rows, assets)
    first = now - timedelta(days=DAYS)
    with engine.connect() as conn:
        conn.exec_driver_sql("SET work_mem = '1GB'")  # each month is sorted into time order
        conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")  # and indexed when attached
        _seed_assets(conn, now, assets)
        partitions.create_months(conn, first, now)
        months = [m for m in partitions.months(conn) if m.start <= now and m.end > first]
        for month in months:
            lo, hi = max(month.start, first), min(month.end, now)
            written = _fill_month(conn, month, lo, hi, step, assets)
            log(f"generate: {month.name} {written:,} rows")
        _seed_reference_prices(conn, first, now, step)
        for month in partitions.months(conn):
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {month.name}")
        conn.exec_driver_sql("ANALYZE price_history")
        conn.exec_driver_sql("VACUUM (ANALYZE) assets, asset_sources")
        # What VACUUM counted (a count(*) of 100M rows would take minutes more).
        total = int(
            conn.scalar(
                sa.text(
                    "SELECT sum(c.reltuples)::bigint FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'price_history'::regclass"
                )
            )
            or 0
        )
    engine.dispose()
    seconds = time.perf_counter() - started
    log(f"generate: {total:,} history rows in {seconds:,.0f} s (one every {step} s per asset)")
    return {"rows": total, "seconds": seconds, "step_seconds": step}


def step_seconds(rows: int, assets: int = CANONICAL) -> int:
    """The time between two observations of one source asset, for `rows` over DAYS."""
    per_asset = max(rows // (assets * len(SOURCES)), 1)
    return max(int(DAYS * 86_400 / per_asset), 1)


def _seed_assets(conn: sa.Connection, now: datetime, assets: int) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO assets (asset_id, symbol, name, created_at, created_run_id) "
            "SELECT 'asset-' || lpad(n::text, 5, '0'), 'G' || n, 'Generated ' || n, :now, 'gen' "
            "FROM generate_series(0, :n - 1) AS n"
        ),
        {"n": assets, "now": now},
    )
    conn.execute(
        sa.text(
            "INSERT INTO asset_sources (source, source_asset_id, asset_id, symbol, name, "
            "price_usd, market_cap_usd, volume_24h_usd, observed_at, ingested_at, run_id, "
            "raw_id, match_method, match_score) "
            "SELECT s, 'gen-' || lpad(n::text, 5, '0') || '-' || s, "
            "'asset-' || lpad(n::text, 5, '0'), 'G' || n, 'Generated ' || n, 10 + n, "
            "(10 + n) * 1e6, (10 + n) * 1e4, :now, :now, 'gen', md5(n::text) || md5(s), "
            "'new', 1 FROM generate_series(0, :n - 1) AS n, unnest(CAST(:sources AS text[])) s"
        ),
        {"n": assets, "now": now, "sources": list(SOURCES)},
    )
    for source in SOURCES:
        conn.execute(
            sa.text(
                "INSERT INTO etl_checkpoints (source, cursor, run_id, updated_at) "
                "VALUES (:s, '{}', 'gen', :now)"
            ),
            {"s": source, "now": now},
        )


def _fill_month(
    conn: sa.Connection, month: partitions.Month, lo: datetime, hi: datetime, step: int, assets: int
) -> int:
    """One month of history, time-major (every source asset at t, then t + step), written
    into a detached copy of the partition, then attached: the attach builds its indexes."""
    fill = f"{month.name}_fill"
    conn.exec_driver_sql(
        f"CREATE TABLE {fill} (LIKE price_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    # Observations on a grid of `step` seconds from the epoch, so months join up seamlessly;
    # each source asset a little apart (as vendors are), prices a slow wave per asset.
    written = conn.execute(
        sa.text(
            f"INSERT INTO {fill} SELECT s, "  # noqa: S608 - fixed names
            "'gen-' || lpad(n::text, 5, '0') || '-' || s, t + (n % 60) * interval '1 second', "
            "'asset-' || lpad(n::text, 5, '0'), "
            "(10 + n) * (1 + 0.2 * sin(extract(epoch FROM t) / 604800 + n) "
            "  + CASE WHEN s = 'coinpaprika' THEN 0.001 ELSE 0 END), "
            "(10 + n) * 1e6, (10 + n) * 1e4 * (1 + 0.5 * cos(extract(epoch FROM t) / 86400)), "
            "t + interval '40 seconds', md5(t::text)::uuid::text, "
            "md5(n::text || s || t::text) || md5(t::text || n::text) "
            "FROM generate_series(to_timestamp(ceil(extract(epoch FROM CAST(:lo AS timestamptz)) "
            "  / :step) * :step), CAST(:hi AS timestamptz) - interval '61 seconds', "
            "  :step * interval '1 second') AS t, "
            "unnest(CAST(:sources AS text[])) AS s, generate_series(0, :n - 1) AS n "
            "ORDER BY t"
        ),
        {"lo": lo, "hi": hi, "step": step, "n": assets, "sources": list(SOURCES)},
    ).rowcount
    conn.exec_driver_sql(f"DROP TABLE {month.name}")
    conn.exec_driver_sql(f"ALTER TABLE {fill} RENAME TO {month.name}")
    conn.exec_driver_sql(
        f"ALTER TABLE price_history ATTACH PARTITION {month.name} "
        f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
    )
    return int(written)


def _seed_reference_prices(conn: sa.Connection, first: datetime, now: datetime, step: int) -> None:
    """Reference prices for one asset in CONSENSUS_SHARE, where the table exists (migration
    0006, the consensus); its columns are read from the database, not assumed."""
    columns = (
        {c["name"]: c for c in sa.inspect(conn).get_columns("reference_prices")}
        if (sa.inspect(conn).has_table("reference_prices"))
        else {}
    )
    if not {"asset_id", "as_of", "price_usd"} <= set(columns):
        log("generate: no reference_prices table: consensus candles will not be measured")
        return
    known = {
        "asset_id": "a.asset_id",
        "as_of": "t",
        "price_usd": "a.price_usd * (1 + 0.2 * sin(extract(epoch FROM t) / 604800))",
        "status": "'ok'",
        "sources_used": "2",
        "sources_total": "2",
        "single_source": "false",
        "constituents": "'[]'",
        "computed_at": "t",
    }
    values = {name: known[name] for name in columns if name in known}
    for name, column in columns.items():
        if name in values or column["nullable"] or column.get("default") is not None:
            continue
        values[name] = _filler(column["type"])
    names = ", ".join(values)
    written = conn.execute(
        sa.text(
            f"INSERT INTO reference_prices ({names}) SELECT {', '.join(values.values())} "  # noqa: S608
            "FROM generate_series(CAST(:lo AS timestamptz), :hi, :step * interval '1 second') t, "
            "(SELECT asset_id, price_usd FROM asset_sources WHERE source = 'coingecko' "
            " AND right(asset_id, 2) = '00') a"
        ),
        {"lo": first, "hi": now, "step": step},
    ).rowcount
    log(f"generate: {written:,} reference prices")


def _filler(column_type: Any) -> str:
    python_type = getattr(column_type, "python_type", str)
    if python_type in (int, float):
        return "1"
    if python_type is datetime:
        return "t"
    if python_type is bool:
        return "true"
    return "'gen'"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument(
        "--assets",
        type=int,
        default=CANONICAL,
        help="canonical assets (two source assets each); keep rows / assets for the same density",
    )
    parser.add_argument("--database", default="kasparro_scale")
    parser.add_argument("--phase", choices=("generate", "measure", "all"), default="all")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"what `measure` measures, comma-separated, of {','.join(PARTS)}",
    )
    args = parser.parse_args(argv)
    parts = [part for part in args.parts.split(",") if part]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"unknown --parts {sorted(unknown)}: choose from {','.join(PARTS)}")
    now = datetime.now(UTC).replace(microsecond=0)
    results: dict[str, Any] = {}
    if args.phase in ("generate", "all"):
        results["generate"] = generate(args.database, args.rows, now, args.assets)
    if args.phase in ("measure", "all"):
        results["measure"] = measure(database_url(args.database), args.samples, parts)
    print(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
