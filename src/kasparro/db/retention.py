"""Price history upkeep: retention (both databases) and opt-in range partitioning (PostgreSQL).

`prune_history` deletes history older than a cutoff in bounded chunks, each its own short write
transaction, walking the primary key so the whole prune reads the table once. The latest row of
every source asset is always kept, however old, so an asset that stopped being reported still
has its last known price.

`partition_price_history` rewrites `price_history` into a table range-partitioned on
`observed_at`, with the same columns, primary key and index names: the application's queries
and its `ON CONFLICT DO NOTHING` inserts work unchanged. `ensure_partitions` then keeps
partitions ahead of time; rows outside every partition land in the default partition and are
moved into their own partition when it is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.db.engine import write_transaction
from kasparro.db.schema import price_history
from kasparro.logging import get_logger

log = get_logger(__name__)

Interval = Literal["day", "week", "month", "year"]
INTERVALS: tuple[Interval, ...] = ("day", "week", "month", "year")

TABLE = price_history.name
DEFAULT_PARTITION = f"{TABLE}_default"
LEGACY_TABLE = f"{TABLE}_unpartitioned"
PK_NAME = "pk_price_history"
INDEX_NAME = "ix_price_history_asset_id_observed_at"
# The table comment records the interval, so `ensure_partitions` needs no argument.
COMMENT_PREFIX = "kasparro:partitioned interval="

PRUNE_CHUNK = 2_000
# More partitions than this in one call means a wrong interval or a wild timestamp.
MAX_NEW_PARTITIONS = 1_000


class NotPostgres(RuntimeError):
    """Partitioning needs PostgreSQL."""


# --------------------------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------------------------


def prune_history(
    engine: Engine,
    *,
    older_than: timedelta,
    now: datetime | None = None,
    chunk_size: int = PRUNE_CHUNK,
) -> int:
    """Delete price_history rows observed before `now - older_than`; returns how many.

    A row is deleted only if a newer row of the same source asset exists, so the latest row of
    each source asset survives. Each chunk of at most `chunk_size` rows is one write transaction,
    so ETL writers are never blocked for long; the walk resumes after the last key it examined.
    """
    if older_than <= timedelta(0):
        raise ValueError("older_than must be positive")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now - older_than

    p = price_history.alias("p")
    newer = price_history.alias("newer")
    has_newer = (
        sa.select(sa.literal(1))
        .where(
            newer.c.source == p.c.source,
            newer.c.source_asset_id == p.c.source_asset_id,
            newer.c.observed_at > p.c.observed_at,
        )
        .exists()
    )
    key_columns = (p.c.source, p.c.source_asset_id, p.c.observed_at)
    pk = price_history.c
    delete_one = sa.delete(price_history).where(
        pk.source == sa.bindparam("k_source"),
        pk.source_asset_id == sa.bindparam("k_asset"),
        pk.observed_at == sa.bindparam("k_observed", type_=pk.observed_at.type),
    )

    deleted = 0
    after: tuple[Any, ...] | None = None
    while True:
        query = (
            sa.select(*key_columns)
            .where(p.c.observed_at < cutoff, has_newer)
            .order_by(*key_columns)
            .limit(chunk_size)
        )
        if after is not None:
            resume = (sa.literal(v, type_=c.type) for v, c in zip(after, key_columns, strict=True))
            query = query.where(sa.tuple_(*key_columns) > sa.tuple_(*resume))
        with write_transaction(engine) as conn:
            keys = [tuple(row) for row in conn.execute(query)]
            if keys:
                params = [{"k_source": s, "k_asset": a, "k_observed": o} for s, a, o in keys]
                conn.execute(delete_one, params)
        deleted += len(keys)
        if len(keys) < chunk_size:
            break
        after = keys[-1]
    log.info("history_pruned", deleted=deleted, cutoff=cutoff.isoformat())
    return deleted


# --------------------------------------------------------------------------------------------
# Partitioning (PostgreSQL only)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    start: datetime
    end: datetime


def period_start(moment: datetime, interval: Interval) -> datetime:
    """The UTC start of the partition period holding `moment`."""
    day = moment.astimezone(UTC).date()
    if interval == "day":
        first = day
    elif interval == "week":
        first = day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    elif interval == "month":
        first = day.replace(day=1)
    elif interval == "year":
        first = date(day.year, 1, 1)
    else:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def next_period(start: datetime, interval: Interval) -> datetime:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    if interval == "month":
        year, month = divmod(start.month, 12)
        return start.replace(year=start.year + year, month=month + 1)
    if interval == "year":
        return start.replace(year=start.year + 1)
    raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")


def partition_for(start: datetime, interval: Interval) -> Partition:
    return Partition(f"{TABLE}_p{start:%Y%m%d}", start, next_period(start, interval))


def is_partitioned(engine_or_conn: Engine | Connection) -> bool:
    """True when price_history is a partitioned table (always False on SQLite)."""
    if engine_or_conn.dialect.name != "postgresql":
        return False
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.connect() as conn:
            return _relkind(conn, TABLE) == "p"
    return _relkind(engine_or_conn, TABLE) == "p"


def partition_price_history(
    engine: Engine,
    *,
    interval: Interval = "month",
    ahead: int = 3,
    now: datetime | None = None,
) -> bool:
    """Rewrite price_history as a table range-partitioned on observed_at (PostgreSQL only).

    One transaction under an exclusive lock: ETL writes wait until it commits, readers see the
    old table or the new one, never a mix; any failure rolls everything back. Partitions cover
    every period from the oldest row to `ahead` periods past now, plus a default partition.
    Returns False, doing nothing, when the table is already partitioned.
    """
    _require_postgres(engine)
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    now = now or datetime.now(UTC)
    with write_transaction(engine) as conn:
        kind = _relkind(conn, TABLE)
        if kind == "p":
            log.info("history_already_partitioned")
            return False
        if kind != "r":
            raise RuntimeError(f"{TABLE} not found: run `kasparro db upgrade` first")
        if _relkind(conn, LEGACY_TABLE) is not None:
            raise RuntimeError(f"{LEGACY_TABLE} exists: a previous conversion left it behind")
        q = _quote(conn)
        conn.exec_driver_sql(f"LOCK TABLE {q(TABLE)} IN ACCESS EXCLUSIVE MODE")
        oldest = conn.scalar(sa.select(sa.func.min(price_history.c.observed_at)))

        # Free the names: index names are unique per schema, not per table.
        conn.exec_driver_sql(f"ALTER TABLE {q(TABLE)} RENAME TO {q(LEGACY_TABLE)}")
        conn.exec_driver_sql(
            f"ALTER TABLE {q(LEGACY_TABLE)} RENAME CONSTRAINT {q(PK_NAME)} "
            f"TO {q(PK_NAME + '_unpartitioned')}"
        )
        conn.exec_driver_sql(
            f"ALTER INDEX {q(INDEX_NAME)} RENAME TO {q(INDEX_NAME + '_unpartitioned')}"
        )

        pk_columns = ", ".join(q(c.name) for c in price_history.primary_key.columns)
        conn.exec_driver_sql(
            f"CREATE TABLE {q(TABLE)} (LIKE {q(LEGACY_TABLE)} INCLUDING DEFAULTS "
            f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) "
            f"PARTITION BY RANGE ({q('observed_at')})"
        )
        conn.exec_driver_sql(
            f"ALTER TABLE {q(TABLE)} ADD CONSTRAINT {q(PK_NAME)} PRIMARY KEY ({pk_columns})"
        )
        conn.exec_driver_sql(
            f"CREATE INDEX {q(INDEX_NAME)} ON {q(TABLE)} ({q('asset_id')}, {q('observed_at')})"
        )
        comment = f"{COMMENT_PREFIX}{interval}"
        conn.exec_driver_sql(f"COMMENT ON TABLE {q(TABLE)} IS '{comment}'")

        first = period_start(oldest or now, interval)
        created = _create_partitions(conn, interval, first, now, ahead)
        # Identifiers here and below are this module's constants, quoted by the dialect.
        copy_rows = f"INSERT INTO {q(TABLE)} SELECT * FROM {q(LEGACY_TABLE)}"  # noqa: S608
        conn.exec_driver_sql(copy_rows)
        conn.exec_driver_sql(f"DROP TABLE {q(LEGACY_TABLE)}")
    log.info("history_partitioned", interval=interval, partitions=len(created))
    return True


def ensure_partitions(engine: Engine, ahead: int = 3, *, now: datetime | None = None) -> list[str]:
    """Create the partitions for the current period and `ahead` more, and the default partition.

    Rows already in the default partition for a new period are moved into it. Safe to run often
    and from several processes (it takes the write lock); returns the names it created. On
    SQLite, or before `partition_price_history`, there is nothing to do and it returns [].
    """
    if ahead < 0:
        raise ValueError("ahead must be zero or more")
    if engine.dialect.name != "postgresql":
        return []
    now = now or datetime.now(UTC)
    with write_transaction(engine) as conn:
        if _relkind(conn, TABLE) != "p":
            log.info("history_not_partitioned")
            return []
        interval = _stored_interval(conn)
        created = _create_partitions(conn, interval, period_start(now, interval), now, ahead)
    if created:
        log.info("history_partitions_created", partitions=created)
    return created


def list_partitions(engine: Engine) -> list[str]:
    """Names of price_history's partitions, oldest bound first, the default partition last."""
    _require_postgres(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound "
                "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
            ),
            {"t": TABLE},
        ).all()
    ranges = sorted(name for name, bound in rows if bound != "DEFAULT")
    return ranges + [name for name, bound in rows if bound == "DEFAULT"]


def _create_partitions(
    conn: Connection, interval: Interval, first: datetime, now: datetime, ahead: int
) -> list[str]:
    last = period_start(now, interval)
    for _ in range(ahead):
        last = next_period(last, interval)
    wanted: list[Partition] = []
    start = first
    while start <= last:
        wanted.append(partition_for(start, interval))
        start = wanted[-1].end
        if len(wanted) > MAX_NEW_PARTITIONS:
            raise RuntimeError(
                f"more than {MAX_NEW_PARTITIONS} {interval} partitions needed from "
                f"{first:%Y-%m-%d}: use a longer interval, or prune the oldest history first"
            )
    created: list[str] = []
    if _relkind(conn, DEFAULT_PARTITION) is None:
        q = _quote(conn)
        conn.exec_driver_sql(f"CREATE TABLE {q(DEFAULT_PARTITION)} PARTITION OF {q(TABLE)} DEFAULT")
        created.append(DEFAULT_PARTITION)
    for part in wanted:
        if _relkind(conn, part.name) is None:
            _create_partition(conn, part)
            created.append(part.name)
    return created


def _create_partition(conn: Connection, part: Partition) -> None:
    """Create one partition, first moving any rows of its range out of the default partition."""
    q = _quote(conn)
    conn.exec_driver_sql(
        f"CREATE TABLE {q(part.name)} (LIKE {q(TABLE)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    move_rows = (
        f"WITH moved AS (DELETE FROM {q(DEFAULT_PARTITION)} "  # noqa: S608 (quoted constants)
        f"WHERE {q('observed_at')} >= :lo AND {q('observed_at')} < :hi RETURNING *) "
        f"INSERT INTO {q(part.name)} SELECT * FROM moved"
    )
    moved = conn.execute(sa.text(move_rows), {"lo": part.start, "hi": part.end}).rowcount
    # DDL takes no bind parameters: the bounds are datetimes this module computed.
    lo, hi = f"'{part.start.isoformat()}'", f"'{part.end.isoformat()}'"
    conn.exec_driver_sql(
        f"ALTER TABLE {q(TABLE)} ATTACH PARTITION {q(part.name)} FOR VALUES FROM ({lo}) TO ({hi})"
    )
    if moved:
        log.info("history_rows_moved_from_default", partition=part.name, rows=moved)


def _relkind(conn: Connection, name: str) -> str | None:
    """'r' table, 'p' partitioned table, None when absent (in the current schema's path)."""
    kind = conn.execute(
        sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    ).scalar()
    return None if kind is None else str(kind)


def _stored_interval(conn: Connection) -> Interval:
    comment = conn.execute(
        sa.text("SELECT obj_description(to_regclass(:t), 'pg_class')"), {"t": TABLE}
    ).scalar()
    if isinstance(comment, str) and comment.startswith(COMMENT_PREFIX):
        value = comment.removeprefix(COMMENT_PREFIX)
        for interval in INTERVALS:
            if value == interval:
                return interval
    raise RuntimeError(f"{TABLE} is partitioned but its comment names no interval: {comment!r}")


def _quote(conn: Connection) -> Any:
    return conn.dialect.identifier_preparer.quote


def _require_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise NotPostgres("partitioning price_history needs PostgreSQL")
