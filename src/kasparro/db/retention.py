"""Price history retention, on both databases.

`retain_history` is what `kasparro db prune-history` runs. On partitioned PostgreSQL it first
drops every month that lies wholly before the cutoff (`drop_expired_months`: DETACH PARTITION
CONCURRENTLY, then DROP TABLE; neither blocks the API's reads), then prunes what remains before
the cutoff row by row. `prune_history` deletes history older than a cutoff in bounded chunks,
each its own short write transaction, walking the primary key so the whole prune reads the table
once; it keeps the latest row of every source asset, however old. A dropped month keeps nothing:
the latest value of an asset no longer reported stays in asset_sources (/data), not in history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.db import partitions
from kasparro.db.engine import write_transaction
from kasparro.db.schema import price_history
from kasparro.logging import get_logger

log = get_logger(__name__)

PRUNE_CHUNK = 2_000
# Session advisory lock of partition retention: two prunes never detach the same month.
RETENTION_LOCK_KEY = 0x4B415052  # "KAPR"


def retain_history(
    engine: Engine, *, older_than: timedelta, now: datetime | None = None
) -> tuple[list[str], int]:
    """Drop the months wholly older than `now - older_than` (partitioned PostgreSQL), then
    prune the older rows left; returns (the partitions dropped, the rows deleted)."""
    now = now or datetime.now(UTC)
    try:
        dropped = drop_expired_months(engine, older_than=older_than, now=now)
    except sa.exc.ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != partitions.INSUFFICIENT_PRIVILEGE:
            raise
        # The application role of a two-role deployment may delete rows, not detach tables.
        log.warning(
            "history_months_not_dropped",
            detail="this database role may not detach partitions (only the schema's owner "
            "may): pruning row by row instead",
        )
        dropped = []
    return dropped, prune_history(engine, older_than=older_than, now=now)


def drop_expired_months(
    engine: Engine, *, older_than: timedelta, now: datetime | None = None
) -> list[str]:
    """Detach and drop every monthly partition that ends at or before `now - older_than`;
    returns their names ([] on SQLite or a plain table).

    `DETACH PARTITION ... CONCURRENTLY` (PostgreSQL 14+) takes only SHARE UPDATE EXCLUSIVE on
    the parent, so reads and inserts go on; it cannot run in a transaction block, so this works
    in autocommit. The catch-all partition of the past is then replaced by an empty one ending
    where the oldest remaining month begins (what it held was older still).
    """
    now = now or datetime.now(UTC)
    if older_than <= timedelta(0):
        raise ValueError("older_than must be positive")
    if not partitions.is_partitioned(engine):
        return []
    cutoff = now - older_than
    dropped: list[str] = []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": RETENTION_LOCK_KEY})
        try:
            # Only this function detaches, and only what it then drops: finish that job first.
            for name in _finish_interrupted_detaches(conn):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_q(conn, name)}")
                dropped.append(name)
            for month in partitions.months(conn):
                if month.end <= cutoff:
                    _detach(conn, month.name)
                    conn.exec_driver_sql(f"DROP TABLE {_q(conn, month.name)}")
                    dropped.append(month.name)
            if dropped:
                remaining = partitions.months(conn)
                oldest = remaining[0].start if remaining else partitions.month_start(now)
                _replace_before(engine, conn, oldest)
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": RETENTION_LOCK_KEY})
    if dropped:
        log.info("history_months_dropped", partitions=dropped, cutoff=cutoff.isoformat())
    return dropped


def _detach(conn: Connection, name: str) -> None:
    conn.exec_driver_sql(
        f"ALTER TABLE {_q(conn, partitions.TABLE)} DETACH PARTITION {_q(conn, name)} CONCURRENTLY"
    )


def _replace_before(engine: Engine, conn: Connection, upper: datetime) -> None:
    """Swap the catch-all of the past for an empty one up to `upper`: the old one is detached
    (its range overlaps the new one's), renamed aside, the new one attached, the old dropped."""
    aside = f"{partitions.BEFORE}_expired"
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_q(conn, aside)}")
    if partitions.before_upper_bound(conn) is not None:
        _detach(conn, partitions.BEFORE)
    if conn.scalar(sa.text("SELECT to_regclass(:n)"), {"n": partitions.BEFORE}) is not None:
        conn.exec_driver_sql(
            f"ALTER TABLE {_q(conn, partitions.BEFORE)} RENAME TO {_q(conn, aside)}"
        )
    with engine.begin() as attaching:  # made and attached together, or neither
        partitions.attach_before(attaching, upper)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_q(conn, aside)}")


def _finish_interrupted_detaches(conn: Connection) -> list[str]:
    """A detach killed between its two transactions leaves the partition half detached;
    FINALIZE completes it (and the next steps find it gone from the parent)."""
    pending = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t) AND i.inhdetachpending"
        ),
        {"t": partitions.TABLE},
    ).scalars()
    names = [str(name) for name in pending]
    for name in names:
        conn.exec_driver_sql(
            f"ALTER TABLE {_q(conn, partitions.TABLE)} DETACH PARTITION {_q(conn, name)} FINALIZE"
        )
        log.info("history_detach_finalized", partition=name)
    return names


def _q(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


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
