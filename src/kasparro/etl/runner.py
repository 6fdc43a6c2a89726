"""Runs: one source from its checkpoint to the end, a batch per transaction with its checkpoint.

A run is recorded before it starts and finalized however it ends; a crash leaves the last
committed batch and its checkpoint, from which the next run resumes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.consensus.refresh import refresh_after_runs
from kasparro.db.engine import write_transaction
from kasparro.db.planner_stats import PlannerStatistics
from kasparro.db.schema import etl_runs
from kasparro.etl.faults import FaultPlan
from kasparro.etl.lease import Heartbeat, Lease, fail_orphaned_runs, renew, try_acquire
from kasparro.etl.prefetch import Prefetcher, start_fork_server
from kasparro.etl.prepare import PreparedBatch, fetch_prepared
from kasparro.etl.run_record import (
    LeaseLost,
    add_batch_to_run,
    conclude,
    count_records,
    record_drift,
    run_failure,
)
from kasparro.etl.run_record import (
    RunResult as RunResult,  # re-exported: what run_source returns
)
from kasparro.identity.crosswalk import Crosswalk, load_crosswalk
from kasparro.load.isolation import load_isolating
from kasparro.load.loader import read_checkpoint, save_checkpoint
from kasparro.logging import get_logger
from kasparro.sources.registry import enabled_sources as enabled_sources
from kasparro.sources.registry import source_names

log = get_logger(__name__)


class SourceBusy(Exception):
    """A run of this source holds its lease."""

    def __init__(self, source: str, holder: str, run_id: str | None) -> None:
        super().__init__(f"{source} is already running (run {run_id}, held by {holder})")
        self.source = source
        self.run_id = run_id


class UnknownSource(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class StartedRun:
    run_id: str
    source: str


def warm_up() -> None:
    """Start, in the background, the fork server that fetch processes are forked from: a process
    that will run sources calls this when it starts."""
    start_fork_server(fetch_prepared.__module__)


def check_sources(names: Sequence[str]) -> list[str]:
    known = source_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownSource(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return list(dict.fromkeys(names))


def run_source(
    engine: Engine,
    settings: Settings,
    source: str,
    *,
    trigger: str,
    on_batch: Callable[[str, int], None] | None = None,
) -> RunResult:
    """Run one source now, in this thread; raises SourceBusy if it is already running.
    `on_batch(label, records processed so far)` is called after each committed batch."""
    (lease,) = begin_runs(engine, settings, check_sources([source]), trigger)
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)
    with Heartbeat(engine, [lease], ttl):
        return _execute(engine, settings, lease, source, on_batch)


def start_runs(
    engine: Engine, settings: Settings, sources: Sequence[str], *, trigger: str
) -> list[StartedRun]:
    """Record and lease every source now (all or none), then run them in a background thread."""
    names = check_sources(sources)
    leases = begin_runs(engine, settings, names, trigger)
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)

    def work() -> None:
        with Heartbeat(engine, leases, ttl) as heartbeat:
            for lease, name in zip(leases, names, strict=True):
                _execute(engine, settings, lease, name)
                heartbeat.drop(lease)
        # The reference prices of the assets these runs changed (logs, never raises).
        refresh_after_runs(engine, settings, [lease.run_id for lease in leases])

    threading.Thread(target=work, name=f"etl-{trigger}", daemon=True).start()
    return [StartedRun(lease.run_id, name) for lease, name in zip(leases, names, strict=True)]


def begin_runs(engine: Engine, settings: Settings, names: list[str], trigger: str) -> list[Lease]:
    """Record a run of each source and take its lease, all or none (SourceBusy)."""
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)
    leases = [Lease(name=f"etl:{name}", run_id=str(uuid.uuid4())) for name in names]
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        for lease, name in zip(leases, names, strict=True):
            held = try_acquire(conn, lease, ttl, now)
            if held is not None:
                raise SourceBusy(name, held.holder, held.run_id)  # rolls back every lease
            fail_orphaned_runs(conn, name, lease.run_id, now)
            conn.execute(
                sa.insert(etl_runs).values(
                    run_id=lease.run_id,
                    source=name,
                    trigger=trigger,
                    status="running",
                    started_at=now,
                )
            )
    return leases


def _execute(
    engine: Engine,
    settings: Settings,
    lease: Lease,
    name: str,
    on_batch: Callable[[str, int], None] | None = None,
) -> RunResult:
    started = time.monotonic()
    status, error, failure_point = "success", None, None
    totals = dict.fromkeys(
        ("processed", "loaded", "unchanged", "quarantined", "linked", "revised", "refused"), 0
    )
    detail: str | None = None
    planner_stats = PlannerStatistics(engine)
    with structlog.contextvars.bound_contextvars(run_id=lease.run_id, source=name):
        log.info("etl_run_started")
        label = "start"
        try:
            faults = FaultPlan.from_spec(settings.kasparro_faults)
            crosswalk = load_crosswalk(settings.identity_crosswalk_path)
            with engine.connect() as conn:
                cursor = read_checkpoint(conn, name)
            label = "fetch"
            prefetcher = Prefetcher[PreparedBatch](
                fetch_prepared, settings, name, cursor, lease.run_id, name=f"fetch-{name}"
            )
            with prefetcher as batches:
                for number, prepared in enumerate(batches, start=1):
                    label = prepared.label
                    faults.hit(name, "after_fetch", batch=number, label=label)
                    outcome = _commit_batch(
                        engine, settings, lease, name, prepared, crosswalk, faults, number
                    )
                    for key, value in outcome.items():
                        totals[key] += value
                    if on_batch is not None:
                        on_batch(prepared.label, totals["processed"])
                    planner_stats.grew(outcome["linked"])
                    faults.hit(name, "after_checkpoint", batch=number, label=label)
                    label = "fetch after " + prepared.label
        except Exception as exc:
            status, failure_point = "failed", label
            error, detail = run_failure(exc, label, lease.run_id)
        finally:
            planner_stats.wait()
        return conclude(
            engine, settings, lease, name, (status, error, detail, failure_point), started, totals
        )


def _commit_batch(
    engine: Engine,
    settings: Settings,
    lease: Lease,
    source: str,
    prepared: PreparedBatch,
    crosswalk: Crosswalk,
    faults: FaultPlan,
    number: int,
) -> dict[str, int]:
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)
    with write_transaction(engine) as conn:
        now = datetime.now(UTC)
        if not renew(conn, lease, ttl, now):  # fencing: a lost lease must not write
            raise LeaseLost(f"{source}: lease lost before committing {prepared.label}")
        outcome, refused = load_isolating(
            conn,
            source=source,
            records=prepared.records,
            rejections=prepared.rejections,
            crosswalk=crosswalk,
            run_id=lease.run_id,
            now=now,
            midpoint=lambda: faults.hit(source, "mid_batch", batch=number, label=prepared.label),
        )
        record_drift(conn, source, prepared.drift, lease.run_id, now)
        faults.hit(source, "before_checkpoint", batch=number, label=prepared.label)
        save_checkpoint(conn, source, prepared.cursor, lease.run_id, now)
        add_batch_to_run(conn, lease.run_id, outcome)
    count_records(source, outcome)
    return {
        "processed": outcome.processed,
        "loaded": outcome.loaded,
        "unchanged": outcome.unchanged,
        "quarantined": outcome.quarantined,
        "linked": outcome.linked,
        "revised": outcome.revised,
        "refused": refused,
    }
