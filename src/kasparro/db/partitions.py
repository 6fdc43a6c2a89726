"""Price history range-partitioned by month on PostgreSQL (SQLite keeps the plain table).

Layout: one partition per calendar month (UTC), `price_history_pYYYYMM01`, from the oldest
month with data to `AHEAD` months past the current one, and one catch-all partition for
everything older, `price_history_before` (MINVALUE to the first month). Every partition is a
range partition: there is deliberately no DEFAULT partition, because PostgreSQL refuses
`DETACH PARTITION ... CONCURRENTLY` on a table that has one, and that is what lets retention drop
a month without blocking the API's reads. The future needs no catch-all: an observation more
than FUTURE_TOLERANCE_SECONDS (at most a day) ahead is quarantined before it reaches the
database, and the months ahead are created by every migration (so every `serve` and `etl run`
that migrates at start) and every scheduler tick (`ensure_partitions`).

Indexes, declared once on the parent and so built on every partition: the primary key
(source, source_asset_id, observed_at); the B-tree (asset_id, observed_at) that history and
candles read, carrying every column they return (INCLUDE) so that neither visits the table:
rows arrive in time order, so an asset's observations are spread over as many table pages as it
has rows, where its index entries sit side by side (README "Years of history": the price is
an index near the table's size); and a BRIN index on observed_at for scans across assets. Later
migrations declare more on the parent (0009 run_id; 0010 (asset_id, source, observed_at) carrying
price and volume, for one source's candles): ATTACH builds each on a new partition.

Partitions are created as plain tables and then attached: ATTACH takes only a SHARE UPDATE
EXCLUSIVE lock on the parent, which neither reads nor the ETL's inserts wait for (CREATE TABLE
... PARTITION OF would take an ACCESS EXCLUSIVE one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.db.engine import write_transaction
from kasparro.logging import get_logger

log = get_logger(__name__)

TABLE = "price_history"
BEFORE = f"{TABLE}_before"
PK_NAME = "pk_price_history"
INDEX_NAME = "ix_price_history_asset_id_observed_at"
BRIN_NAME = "ix_price_history_observed_at_brin"
PK_COLUMNS = ("source", "source_asset_id", "observed_at")
# What candles and an asset's history (api/queries/assets.py) read besides the key, so both are
# index-only scans of contiguous leaf pages, not a table page per observation. Not raw_id.
COVERED = (
    "source", "price_usd", "volume_24h_usd", "source_asset_id", "market_cap_usd", "ingested_at",
    "run_id",
)  # fmt: skip
# Months created past the current one, so a run never meets a month without its partition.
AHEAD = 3
# More partitions than this in one call means a wild timestamp, not history.
MAX_NEW_PARTITIONS = 600
INSUFFICIENT_PRIVILEGE = "42501"
_MONTH_NAME = re.compile(rf"^{TABLE}_p(\d{{4}})(\d{{2}})01$")
# A partition, or an index PostgreSQL made for one (named after its table).
_PARTITION_OBJECT = re.compile(rf"^{TABLE}_(p\d{{8}}|before)(_|$)")


@dataclass(frozen=True, slots=True)
class Month:
    """One monthly partition: [start, end) in UTC."""

    start: datetime

    @property
    def end(self) -> datetime:
        return add_months(self.start, 1)

    @property
    def name(self) -> str:
        return f"{TABLE}_p{self.start:%Y%m%d}"


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the month holding `moment`."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    year, month = divmod(start.month - 1 + months, 12)
    return start.replace(year=start.year + year, month=month + 1)


def month_of_partition(name: str) -> Month | None:
    """The month a partition's name stands for; None for any other name."""
    match = _MONTH_NAME.match(name)
    if match is None:
        return None
    return Month(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC))


def is_partition_object(name: str | None) -> bool:
    """A table or index that only partitioning makes (a partition, its own indexes, the BRIN
    index): not part of db/schema.py, which describes the parent as SQLite has it."""
    if name is None:
        return False
    return name == BRIN_NAME or _PARTITION_OBJECT.match(name) is not None


def is_partitioned(bind: Engine | Connection) -> bool:
    """True when price_history is a partitioned table (always False on SQLite)."""
    if bind.dialect.name != "postgresql":
        return False
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return _relkind(conn, TABLE) == "p"
    return _relkind(bind, TABLE) == "p"


def months(conn: Connection) -> list[Month]:
    """The monthly partitions attached now, oldest first."""
    names = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t)"
        ),
        {"t": TABLE},
    ).scalars()
    found = (month_of_partition(str(name)) for name in names)
    return sorted((m for m in found if m is not None), key=lambda m: m.start)


# ---------------------------------------------------------------------------------------------
# Conversion (migration 0007) and its reverse
# ---------------------------------------------------------------------------------------------


def convert_to_partitioned(conn: Connection, *, now: datetime | None = None) -> int:
    """Rewrite the plain price_history as the partitioned table, in the caller's transaction;
    returns the rows copied. Raises (so the transaction rolls back) unless every row arrived.

    The old table is renamed aside under an exclusive lock, the new one made with the same
    columns, the rows copied month by month straight into their partitions (no index to
    maintain yet, no tuple routing), then the indexes built once per partition, and the old
    table dropped.
    """
    now = now or datetime.now(UTC)
    q = _quote(conn)
    old = f"{TABLE}_unpartitioned"
    conn.exec_driver_sql(f"LOCK TABLE {q(TABLE)} IN ACCESS EXCLUSIVE MODE")
    oldest, newest, total = conn.execute(
        sa.text(f"SELECT min(observed_at), max(observed_at), count(*) FROM {q(TABLE)}")  # noqa: S608
    ).one()
    # Names are unique per schema, not per table: free them for the new table.
    conn.exec_driver_sql(f"ALTER TABLE {q(TABLE)} RENAME TO {q(old)}")
    conn.exec_driver_sql(
        f"ALTER TABLE {q(old)} RENAME CONSTRAINT {q(PK_NAME)} TO {q(PK_NAME + '_u')}"
    )
    conn.exec_driver_sql(f"ALTER INDEX {q(INDEX_NAME)} RENAME TO {q(INDEX_NAME + '_u')}")
    conn.exec_driver_sql(
        f"CREATE TABLE {q(TABLE)} (LIKE {q(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        f"INCLUDING STORAGE) PARTITION BY RANGE (observed_at)"
    )
    first = month_start(oldest or now)
    last = month_start(max(newest or now, now))
    attach_before(conn, first)
    copied = conn.execute(
        sa.text(f"INSERT INTO {q(BEFORE)} SELECT * FROM {q(old)} WHERE observed_at < :hi"),  # noqa: S608
        {"hi": first},
    ).rowcount
    for month in _months_between(first, add_months(last, AHEAD)):
        _attach_month(conn, month)
        copied += conn.execute(
            sa.text(
                f"INSERT INTO {q(month.name)} SELECT * FROM {q(old)} "  # noqa: S608
                "WHERE observed_at >= :lo AND observed_at < :hi"
            ),
            {"lo": month.start, "hi": month.end},
        ).rowcount
    if copied != total:
        raise RuntimeError(f"{TABLE}: copied {copied} of {total} rows into partitions; rolled back")
    _create_indexes(conn)
    conn.exec_driver_sql(f"DROP TABLE {q(old)}")
    log.info("history_partitioned", rows=copied, months=len(months(conn)))
    return int(copied)


def convert_to_plain(conn: Connection) -> int:
    """The reverse of `convert_to_partitioned` (a downgrade), in the caller's transaction."""
    q = _quote(conn)
    old = f"{TABLE}_partitioned"
    conn.exec_driver_sql(f"LOCK TABLE {q(TABLE)} IN ACCESS EXCLUSIVE MODE")
    total = conn.execute(sa.text(f"SELECT count(*) FROM {q(TABLE)}")).scalar_one()  # noqa: S608
    conn.exec_driver_sql(f"ALTER TABLE {q(TABLE)} RENAME TO {q(old)}")
    conn.exec_driver_sql(
        f"ALTER TABLE {q(old)} RENAME CONSTRAINT {q(PK_NAME)} TO {q(PK_NAME + '_p')}"
    )
    conn.exec_driver_sql(f"ALTER INDEX {q(INDEX_NAME)} RENAME TO {q(INDEX_NAME + '_p')}")
    conn.exec_driver_sql(
        f"CREATE TABLE {q(TABLE)} (LIKE {q(old)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE)"
    )
    copied = conn.execute(
        sa.text(f"INSERT INTO {q(TABLE)} SELECT * FROM {q(old)}")  # noqa: S608
    ).rowcount
    if copied != total:
        raise RuntimeError(f"{TABLE}: copied {copied} of {total} rows back; rolled back")
    columns = ", ".join(q(c) for c in PK_COLUMNS)
    conn.exec_driver_sql(
        f"ALTER TABLE {q(TABLE)} ADD CONSTRAINT {q(PK_NAME)} PRIMARY KEY ({columns})"
    )
    conn.exec_driver_sql(f"CREATE INDEX {q(INDEX_NAME)} ON {q(TABLE)} (asset_id, observed_at)")
    conn.exec_driver_sql(f"DROP TABLE {q(old)}")  # its partitions go with it
    return int(copied)


# ---------------------------------------------------------------------------------------------
# Months ahead
# ---------------------------------------------------------------------------------------------


def ensure_partitions(
    bind: Engine | Connection, *, ahead: int = AHEAD, now: datetime | None = None
) -> list[str]:
    """Create the partitions of the current month and `ahead` more that are missing; returns
    their names. Cheap when there is nothing to do (one catalog query), so every migration and
    every scheduler tick calls it. Nothing on SQLite or on a plain table."""
    if ahead < 0:
        raise ValueError("ahead must be zero or more")
    if bind.dialect.name != "postgresql":
        return []
    now = now or datetime.now(UTC)
    if isinstance(bind, Connection):
        return _ensure(bind, ahead, now)
    with bind.connect() as conn:
        if _relkind(conn, TABLE) != "p" or _covered(conn, now, ahead):
            return []
    # Serialized with the ETL's writes (the same advisory lock): two processes never race to
    # attach the same month.
    with write_transaction(bind) as conn:
        return _ensure(conn, ahead, now)


def keep_partitions_ahead(engine: Engine) -> None:
    """`ensure_partitions` for the scheduler's ticks: never raises. The application role of a
    two-role deployment may not attach partitions (only the schema's owner may): that is a
    warning, since migrations and `kasparro db partition-history` run as the owner."""
    try:
        ensure_partitions(engine)
    except sa.exc.ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            log.error("history_partitions_failed", error=str(exc.orig).splitlines()[0])
            return
        log.warning(
            "history_partitions_not_permitted",
            detail="this database role may not create partitions; run `kasparro db "
            "partition-history` as the schema's owner (migrations do it too)",
        )
    except sa.exc.SQLAlchemyError as exc:
        log.error("history_partitions_failed", error=str(exc).splitlines()[0])


def create_months(conn: Connection, first: datetime, last: datetime) -> list[str]:
    """Attach the missing monthly partitions from `first`'s month to `last`'s, in the caller's
    transaction (a backfill older than the partitions, or a benchmark); returns their names.

    Months older than the catch-all's bound take part of its range: it is replaced by an empty
    one ending at the first new month, which takes a short exclusive lock on the table (a
    plain DETACH, since this runs in a transaction). Refused while it holds rows that would
    belong to the new months.
    """
    q = _quote(conn)
    first = month_start(first)
    bound = before_upper_bound(conn)
    if bound is not None and first < bound:
        held = conn.scalar(
            sa.text(f"SELECT count(*) FROM {q(BEFORE)} WHERE observed_at >= :lo"),  # noqa: S608
            {"lo": first},
        )
        if held:
            raise RuntimeError(
                f"{BEFORE} holds {held} rows from {first:%Y-%m} on: move them out first"
            )
        conn.exec_driver_sql(f"ALTER TABLE {q(TABLE)} DETACH PARTITION {q(BEFORE)}")
        conn.exec_driver_sql(f"ALTER TABLE {q(BEFORE)} RENAME TO {q(BEFORE + '_old')}")
    created = []
    for month in _months_between(first, month_start(last)):
        if _relkind(conn, month.name) is None:
            _attach_month(conn, month)
            created.append(month.name)
    if bound is not None and first < bound:
        attach_before(conn, first)
        conn.exec_driver_sql(
            f"INSERT INTO {q(TABLE)} SELECT * FROM {q(BEFORE + '_old')}"  # noqa: S608
        )
        conn.exec_driver_sql(f"DROP TABLE {q(BEFORE + '_old')}")
    return created


def _covered(conn: Connection, now: datetime, ahead: int) -> bool:
    wanted = add_months(month_start(now), ahead)
    present = {m.start for m in months(conn)}
    return all(m.start in present for m in _months_between(month_start(now), wanted))


def _ensure(conn: Connection, ahead: int, now: datetime) -> list[str]:
    if _relkind(conn, TABLE) != "p":
        return []
    present = months(conn)
    # From the month after the newest partition (never leave a hole behind it), else this one.
    first = present[-1].end if present else month_start(now)
    first = min(first, month_start(now))
    created = []
    for month in _months_between(first, add_months(month_start(now), ahead)):
        if _relkind(conn, month.name) is None:
            _attach_month(conn, month)
            created.append(month.name)
    if created:
        log.info("history_partitions_created", partitions=created)
    return created


# ---------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------


def _months_between(first: datetime, last: datetime) -> list[Month]:
    """Every month from the one starting at `first` to the one starting at `last`, included."""
    found: list[Month] = []
    start = first
    while start <= last:
        found.append(Month(start))
        if len(found) > MAX_NEW_PARTITIONS:
            raise RuntimeError(
                f"more than {MAX_NEW_PARTITIONS} monthly partitions from {first:%Y-%m}: is an "
                "observed_at wrong?"
            )
        start = add_months(start, 1)
    return found


def _attach_month(conn: Connection, month: Month) -> None:
    q = _quote(conn)
    conn.exec_driver_sql(
        f"CREATE TABLE {q(month.name)} (LIKE {q(TABLE)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE)"
    )
    # DDL takes no bind parameters: the bounds are datetimes computed here, never input.
    conn.exec_driver_sql(
        f"ALTER TABLE {q(TABLE)} ATTACH PARTITION {q(month.name)} "
        f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
    )


def attach_before(conn: Connection, upper: datetime, name: str = BEFORE) -> None:
    """A new, empty catch-all partition for everything observed before `upper`."""
    q = _quote(conn)
    conn.exec_driver_sql(
        f"CREATE TABLE {q(name)} (LIKE {q(TABLE)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING STORAGE)"
    )
    conn.exec_driver_sql(
        f"ALTER TABLE {q(TABLE)} ATTACH PARTITION {q(name)} "
        f"FOR VALUES FROM (MINVALUE) TO ('{upper.isoformat()}')"
    )


def before_upper_bound(conn: Connection) -> datetime | None:
    """Where the catch-all partition of the past ends (None when it is missing)."""
    bound = conn.execute(
        sa.text(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
            "WHERE c.oid = to_regclass(:name)"
        ),
        {"name": BEFORE},
    ).scalar()
    match = re.search(r"TO \('([^']+)'\)", bound or "")
    if match is None:
        return None
    return datetime.fromisoformat(match[1]).astimezone(UTC)


def _create_indexes(conn: Connection) -> None:
    q = _quote(conn)
    columns = ", ".join(q(c) for c in PK_COLUMNS)
    conn.exec_driver_sql(
        f"ALTER TABLE {q(TABLE)} ADD CONSTRAINT {q(PK_NAME)} PRIMARY KEY ({columns})"
    )
    conn.exec_driver_sql(
        f"CREATE INDEX {q(INDEX_NAME)} ON {q(TABLE)} (asset_id, observed_at) "
        f"INCLUDE ({', '.join(COVERED)})"
    )
    conn.exec_driver_sql(f"CREATE INDEX {q(BRIN_NAME)} ON {q(TABLE)} USING brin (observed_at)")


def _relkind(conn: Connection, name: str) -> str | None:
    """'r' table, 'p' partitioned table, None when absent."""
    kind = conn.execute(
        sa.text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    ).scalar()
    return None if kind is None else str(kind)


def _quote(conn: Connection) -> Any:
    return conn.dialect.identifier_preparer.quote
