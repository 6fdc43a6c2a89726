"""Price history partitioned by month on PostgreSQL: the conversion keeps every row, months are
created ahead, retention drops whole months without blocking readers."""

from __future__ import annotations

import calendar
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from kasparro.api.queries.assets import asset_history
from kasparro.api.queries.candles import candles
from kasparro.db import partitions
from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import downgrade, upgrade
from kasparro.db.retention import drop_expired_months, retain_history
from kasparro.db.schema import price_history
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_unavailable

# An order-independent fingerprint of every value of every row.
CHECKSUM = sa.text(
    "SELECT count(*), md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))) "
    "FROM price_history AS t"
)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A database of this test's own: these tests change the partitions themselves."""
    admin = create_db_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"kasparro_part_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _postgres_unavailable(str(exc.orig).splitlines()[0] if exc.orig else str(exc))
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    upgrade(pg_url)
    engine = create_db_engine(pg_url)
    yield engine
    engine.dispose()


def add_history(engine: Engine, first: datetime, days: int, assets: int = 3) -> int:
    """One row per asset per 6 hours from `first`, with values that differ row to row."""
    rows = [
        {
            "source": "coingecko",
            "source_asset_id": f"coin-{a}",
            "observed_at": first + timedelta(hours=6 * step),
            "asset_id": f"asset-{a}",
            "price_usd": 100.0 * (a + 1) + step * 0.25,
            "market_cap_usd": None if step % 7 == 0 else 1e9 + step,
            "volume_24h_usd": 5e6 - step,
            "ingested_at": first + timedelta(hours=6 * step, seconds=30),
            "run_id": f"run-{step // 4}",
            "raw_id": f"{a:04d}{step:060d}",
        }
        for step in range(days * 4)
        for a in range(assets)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(price_history), rows)
    return len(rows)


def checksum(engine: Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        count, digest = conn.execute(CHECKSUM).one()
    return int(count), str(digest)


def partition_of(engine: Engine, observed_at: datetime) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.text(
                    "SELECT DISTINCT tableoid::regclass::text FROM price_history "
                    "WHERE observed_at = :t"
                ),
                {"t": observed_at},
            ).scalar_one()
        )


def test_conversion_keeps_every_row_and_reverses(pg_url: str) -> None:
    upgrade(pg_url, "0006")
    engine = create_db_engine(pg_url)
    try:
        added = add_history(engine, datetime(2025, 10, 20, tzinfo=UTC), days=80, assets=5)
        before = checksum(engine)
        assert before[0] == added

        upgrade(pg_url)  # 0007: plain -> partitioned, month by month
        assert partitions.is_partitioned(engine)
        assert checksum(engine) == before
        with engine.connect() as conn:
            names = [m.name for m in partitions.months(conn)]
            assert partitions.before_upper_bound(conn) == datetime(2025, 10, 1, tzinfo=UTC)
        assert names[0] == "price_history_p20251001"
        assert "price_history_p20260101" in names
        assert partition_of(engine, datetime(2025, 12, 31, 18, tzinfo=UTC)) == (
            "price_history_p20251201"
        )

        downgrade(pg_url, "0006")  # and back to one plain table, the same rows
        assert not partitions.is_partitioned(engine)
        assert checksum(engine) == before
    finally:
        engine.dispose()


def test_rows_keep_their_primary_key_and_conflicts(pg: Engine) -> None:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    add_history(pg, when, days=1)
    with pytest.raises(sa.exc.IntegrityError):
        add_history(pg, when, days=1)  # the primary key holds across the partitioned table
    assert checksum(pg)[0] == 12


def test_months_ahead_are_created_once(pg: Engine) -> None:
    with pg.connect() as conn:
        newest = partitions.months(conn)[-1]
    later = newest.start + timedelta(days=100)
    created = partitions.ensure_partitions(pg, now=later)
    last = partitions.add_months(partitions.month_start(later), partitions.AHEAD)
    expected, start = [], newest.end
    while start <= last:
        expected.append(partitions.Month(start).name)
        start = partitions.add_months(start, 1)
    assert created == expected
    assert len(created) >= partitions.AHEAD + 3
    assert partitions.ensure_partitions(pg, now=later) == []
    add_history(pg, last + timedelta(days=3), days=1)
    assert partition_of(pg, last + timedelta(days=3)) == partitions.Month(last).name


def test_old_observations_land_in_the_catch_all(pg: Engine) -> None:
    old = datetime(2015, 3, 1, tzinfo=UTC)
    add_history(pg, old, days=1)
    assert partition_of(pg, old) == partitions.BEFORE


def days_in(month_start: datetime) -> int:
    return calendar.monthrange(month_start.year, month_start.month)[1]


def test_retention_drops_whole_months_and_keeps_the_past_covered(pg: Engine) -> None:
    # The test database was migrated today, empty: its months begin with the current one.
    with pg.connect() as conn:
        first = partitions.months(conn)[0].start
    second = partitions.add_months(first, 1)
    add_history(pg, first, days=75)
    add_history(pg, first - timedelta(days=400), days=2)  # in the catch-all
    total = checksum(pg)[0]
    now = partitions.add_months(first, 2) + timedelta(days=3)

    # The cutoff (30 days back) falls in the second month: only the first ends before it.
    dropped = drop_expired_months(pg, older_than=timedelta(days=30), now=now)

    assert dropped == [partitions.Month(first).name]
    assert total - checksum(pg)[0] == days_in(first) * 4 * 3 + 2 * 4 * 3
    with pg.connect() as conn:
        assert partitions.months(conn)[0].start == second
        assert partitions.before_upper_bound(conn) == second
        assert conn.scalar(sa.select(sa.func.min(price_history.c.observed_at))) == second
    # A late observation of the dropped month still loads, into the new catch-all.
    add_history(pg, first + timedelta(days=2), days=1)
    assert partition_of(pg, first + timedelta(days=2)) == partitions.BEFORE
    assert drop_expired_months(pg, older_than=timedelta(days=30), now=now) == []


def test_retention_then_prunes_rows_but_keeps_each_latest(pg: Engine) -> None:
    with pg.connect() as conn:
        first = partitions.months(conn)[0].start
    add_history(pg, first, days=40)
    # Cutoff: 40 days after the first day, i.e. after every row.
    dropped, deleted = retain_history(
        pg, older_than=timedelta(days=5), now=first + timedelta(days=45)
    )
    assert dropped == [partitions.Month(first).name]
    # The rest of the rows before the cutoff went row by row, except each asset's latest.
    assert deleted == (40 - days_in(first)) * 4 * 3 - 3
    with pg.connect() as conn:
        left = conn.execute(
            sa.select(price_history.c.source_asset_id, price_history.c.observed_at)
        ).all()
    assert sorted(left) == [
        (f"coin-{a}", first + timedelta(days=40) - timedelta(hours=6)) for a in range(3)
    ]


def test_dropping_a_month_does_not_block_readers(pg: Engine) -> None:
    """A reader's transaction is open on the table while retention runs: the detach waits for
    it, and meanwhile another reader is served at once (a plain DETACH would queue an ACCESS
    EXCLUSIVE lock that every new reader waits behind: lock_timeout would fail it)."""
    with pg.connect() as conn:
        first = partitions.months(conn)[0].start
    add_history(pg, first, days=40)
    holder = pg.connect()
    holder.begin()
    holder.execute(sa.select(sa.func.count()).select_from(price_history)).scalar()
    result: dict[str, object] = {}

    def retention() -> None:
        try:
            result["dropped"] = drop_expired_months(
                pg,
                older_than=timedelta(days=1),
                now=partitions.add_months(first, 1) + timedelta(days=2),
            )
        except Exception as exc:  # reported below
            result["error"] = exc

    worker = threading.Thread(target=retention)
    worker.start()
    try:
        waiting = _wait_for_detach(pg)
        assert waiting, "retention never reached its detach"
        with pg.connect() as reader:
            reader.exec_driver_sql("SET lock_timeout = '2s'")
            count = reader.execute(
                sa.select(sa.func.count()).select_from(price_history)
            ).scalar_one()
        assert count > 0
    finally:
        holder.rollback()
        holder.close()
        worker.join(timeout=60)
    assert "error" not in result, result
    assert result["dropped"] == [partitions.Month(first).name]


def _wait_for_detach(engine: Engine) -> bool:
    """True once a session is running DETACH ... CONCURRENTLY (waiting for the holder)."""
    for _ in range(200):
        with engine.connect() as conn:
            active = conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query ILIKE '%DETACH PARTITION%CONCURRENTLY%' "
                    "AND pid <> pg_backend_pid()"
                )
            )
        if active:
            return True
        threading.Event().wait(0.05)
    return False


def plans_of(engine: Engine, read: Callable[[Connection], object]) -> list[str]:
    """The plans PostgreSQL chooses for the statements `read` runs, with sequential and bitmap
    scans off so that the choice is between reading the table and not (the tables are tiny)."""
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_bitmapscan = off")
        sa.event.listen(conn, "before_cursor_execute", capture)
        read(conn)
        sa.event.remove(conn, "before_cursor_execute", capture)
        return [
            "\n".join(line for (line,) in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
            for statement, parameters in statements
        ]


def test_history_and_candles_never_read_the_table(pg: Engine) -> None:
    # Rows arrive in time order, so an asset's rows are one table page each: at 100M rows a
    # year of one asset's history read that way was ~1,900 cold pages (README "Years of
    # history"). The index carries every column both return; VACUUM marks the pages all-visible.
    first = datetime.now(UTC) - timedelta(days=20)
    add_history(pg, first, days=10)
    with pg.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE price_history")
    end = first + timedelta(days=15)
    plans = plans_of(
        pg,
        lambda conn: asset_history(
            conn, "asset-1", source="coingecko", start=first, end=end, limit=1000
        ),
    ) + plans_of(
        pg,
        lambda conn: candles(
            conn, "asset-1", source="coingecko", width=timedelta(days=1), start=first,
            end=end, limit=100,
        ),
    )  # fmt: skip
    assert len(plans) == 2
    for plan in plans:
        assert "Index Only Scan" in plan, plan
        assert "Index Scan" not in plan.replace("Index Only Scan", ""), plan
    # One source's candles read the narrow index of migration 0010 (its partitions' copies are
    # named after their columns), not the wide one that holds every source's rows.
    assert "asset_id_source_observed_at" in plans[1], plans[1]
