"""A lease row per source: at most one run of a source at a time, across processes and machines.

Works on SQLite and PostgreSQL alike. A lease expires unless renewed; a holder that died on this
host is detected at once, so a killed run can be resumed without waiting for the expiry.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.db.engine import write_transaction
from kasparro.db.schema import etl_locks, etl_runs
from kasparro.logging import get_logger

log = get_logger(__name__)

HOST = socket.gethostname()
PROCESS_TOKEN = uuid.uuid4().hex[:8]
HOLDER = f"{HOST}:{os.getpid()}:{PROCESS_TOKEN}"


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    run_id: str
    holder: str = HOLDER


@dataclass(frozen=True, slots=True)
class Held:
    """Who holds a lease we could not take."""

    holder: str
    run_id: str | None
    expires_at: datetime


def try_acquire(conn: Connection, lease: Lease, ttl: timedelta, now: datetime) -> Held | None:
    """Take the lease (inside the caller's write transaction); returns the holder when busy."""
    row = conn.execute(sa.select(etl_locks).where(etl_locks.c.name == lease.name)).first()
    values = {
        "holder": lease.holder,
        "run_id": lease.run_id,
        "acquired_at": now,
        "expires_at": now + ttl,
    }
    if row is None:
        conn.execute(sa.insert(etl_locks).values(name=lease.name, **values))
    elif row.expires_at <= now or _holder_is_dead(row.holder):
        conn.execute(sa.update(etl_locks).where(etl_locks.c.name == lease.name).values(**values))
        log.warning("lease_taken_over", lease=lease.name, previous_holder=row.holder)
    else:
        return Held(holder=row.holder, run_id=row.run_id, expires_at=row.expires_at)
    return None


def renew(conn: Connection, lease: Lease, ttl: timedelta, now: datetime) -> bool:
    """Extend the lease if we still hold it; False means it was lost (expired and taken)."""
    result = conn.execute(
        sa.update(etl_locks)
        .where(
            etl_locks.c.name == lease.name,
            etl_locks.c.holder == lease.holder,
            etl_locks.c.run_id == lease.run_id,
        )
        .values(expires_at=now + ttl)
    )
    return result.rowcount == 1


def release(conn: Connection, lease: Lease) -> None:
    conn.execute(
        sa.delete(etl_locks).where(
            etl_locks.c.name == lease.name,
            etl_locks.c.holder == lease.holder,
            etl_locks.c.run_id == lease.run_id,
        )
    )


SLOT_PREFIX = "slot:"
# How long a claimed slot is remembered: far longer than any clock skew between schedulers.
SLOT_MEMORY = timedelta(days=1)


def claim_slot(conn: Connection, source: str, slot: datetime, now: datetime) -> bool:
    """Claim one scheduled slot of a source (inside the caller's write transaction): True for
    the first process that asks, False for every other. The lease alone keeps runs from
    overlapping; this keeps a quick run from running again when a slower scheduler's tick for
    the same slot arrives after it finished."""
    name = f"{SLOT_PREFIX}{source}:{slot.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    conn.execute(
        sa.delete(etl_locks).where(
            etl_locks.c.name.startswith(SLOT_PREFIX), etl_locks.c.expires_at < now
        )
    )
    if conn.execute(sa.select(etl_locks.c.name).where(etl_locks.c.name == name)).first():
        return False
    conn.execute(
        sa.insert(etl_locks).values(
            name=name, holder=HOLDER, run_id=None, acquired_at=now, expires_at=slot + SLOT_MEMORY
        )
    )
    return True


def fail_orphaned_runs(conn: Connection, source: str, current_run_id: str, now: datetime) -> int:
    """Runs of this source still marked running lost their process: we hold the lease now."""
    result = conn.execute(
        sa.update(etl_runs)
        .where(
            etl_runs.c.source == source,
            etl_runs.c.status == "running",
            etl_runs.c.run_id != current_run_id,
        )
        .values(
            status="failed",
            finished_at=now,
            error="interrupted: the process running it stopped before it finished",
            failure_point=sa.func.coalesce(etl_runs.c.failure_point, "interrupted"),
        )
    )
    return int(result.rowcount or 0)


def interrupt_dead_runs(engine: Engine) -> list[str]:
    """At start-up: the runs whose lease a process of this host held and that process is gone
    are marked `interrupted` and their leases freed, at once, not when the leases expire.
    Another machine's leases are left to expire. Never raises: a database that is down is
    the probes' business."""
    try:
        with write_transaction(engine) as conn:
            now = datetime.now(UTC)
            held = conn.execute(
                sa.select(etl_locks).where(
                    etl_locks.c.run_id.is_not(None), ~etl_locks.c.name.startswith(SLOT_PREFIX)
                )
            ).all()
            dead = [lock for lock in held if _holder_is_dead(lock.holder)]
            for lock in dead:
                conn.execute(
                    sa.update(etl_runs)
                    .where(etl_runs.c.run_id == lock.run_id, etl_runs.c.status == "running")
                    .values(
                        status="interrupted",
                        finished_at=now,
                        error="interrupted: the process running it stopped before it finished",
                        failure_point=sa.func.coalesce(etl_runs.c.failure_point, "interrupted"),
                    )
                )
                conn.execute(
                    sa.delete(etl_locks).where(
                        etl_locks.c.name == lock.name, etl_locks.c.holder == lock.holder
                    )
                )
    except sa.exc.SQLAlchemyError as exc:
        log.warning("interrupted_runs_not_checked", error=str(exc).splitlines()[0])
        return []
    run_ids = [str(lock.run_id) for lock in dead]
    if run_ids:
        log.warning("runs_interrupted", run_ids=run_ids)
    return run_ids


def _holder_is_dead(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != HOST or not pid_text.isdigit():
        return False  # another machine's process: only the expiry can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return token != PROCESS_TOKEN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Heartbeat:
    """Renews leases in the background while a run waits on slow upstreams."""

    def __init__(self, engine: Engine, leases: list[Lease], ttl: timedelta) -> None:
        self._engine = engine
        self._leases = list(leases)
        self._ttl = ttl
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def drop(self, lease: Lease) -> None:
        with self._lock:
            self._leases = [held for held in self._leases if held != lease]

    def _beat(self) -> None:
        interval = max(self._ttl.total_seconds() / 3, 1.0)
        while not self._stop.wait(interval):
            with self._lock:
                leases = list(self._leases)
            if not leases:
                continue
            try:
                with write_transaction(self._engine) as conn:
                    now = datetime.now(UTC)
                    for lease in leases:
                        renew(conn, lease, self._ttl, now)
            except sa.exc.SQLAlchemyError as exc:  # the run's own renewals will notice a loss
                log.warning("lease_heartbeat_failed", error=str(exc).splitlines()[0])
