"""Runs: one source from its checkpoint to the end, a batch per transaction with its checkpoint.

A run is recorded before it starts and finalized however it ends; a crash leaves the last
committed batch and its checkpoint, from which the next run resumes.
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine

from kasparro import metrics, redaction
from kasparro.config import Settings
from kasparro.db.engine import write_transaction
from kasparro.db.planner_stats import PlannerStatistics
from kasparro.db.schema import anomalies, drift_events, etl_runs
from kasparro.etl.faults import FaultPlan, InjectedFault
from kasparro.etl.lease import Heartbeat, Lease, fail_orphaned_runs, release, renew, try_acquire
from kasparro.etl.prefetch import Prefetcher, start_fork_server
from kasparro.etl.prepare import PreparedBatch, fetch_prepared
from kasparro.identity.crosswalk import Crosswalk, load_crosswalk
from kasparro.load.isolation import load_isolating
from kasparro.load.loader import read_checkpoint, save_checkpoint
from kasparro.load.sql import insert_ignore
from kasparro.logging import get_logger
from kasparro.models import SOURCES
from kasparro.quality.anomalies import (
    RunFigures,
    compare_run,
    price_outliers,
    run_history,
    touched_prices,
)
from kasparro.quality.drift import DriftReport
from kasparro.sources.base import SourceError
from kasparro.sources.registry import is_incremental

log = get_logger(__name__)


class SourceBusy(Exception):
    """A run of this source holds its lease."""

    def __init__(self, source: str, holder: str, run_id: str | None) -> None:
        super().__init__(f"{source} is already running (run {run_id}, held by {holder})")
        self.source = source
        self.run_id = run_id


class UnknownSource(ValueError):
    pass


class LeaseLost(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class StartedRun:
    run_id: str
    source: str


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    source: str
    status: str
    records_processed: int
    records_loaded: int
    records_unchanged: int
    records_quarantined: int
    duration_ms: int
    records_revised: int = 0
    error: str | None = None
    failure_point: str | None = None


def enabled_sources(settings: Settings) -> list[str]:
    flags = {
        "coingecko": settings.coingecko_enabled,
        "coinpaprika": settings.coinpaprika_enabled,
        "csv": settings.csv_enabled,
        "csv_weird": settings.csv_weird_enabled,
    }
    return [name for name in SOURCES if flags[name]]


def warm_up() -> None:
    """Start, in the background, the fork server that fetch processes are forked from: a process
    that will run sources calls this when it starts."""
    start_fork_server(fetch_prepared.__module__)


def check_sources(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise UnknownSource(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
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
    (lease,) = _begin(engine, settings, check_sources([source]), trigger)
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)
    with Heartbeat(engine, [lease], ttl):
        return _execute(engine, settings, lease, source, on_batch)


def start_runs(
    engine: Engine, settings: Settings, sources: Sequence[str], *, trigger: str
) -> list[StartedRun]:
    """Record and lease every source now (all or none), then run them in a background thread."""
    names = check_sources(sources)
    leases = _begin(engine, settings, names, trigger)
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)

    def work() -> None:
        with Heartbeat(engine, leases, ttl) as heartbeat:
            for lease, name in zip(leases, names, strict=True):
                _execute(engine, settings, lease, name)
                heartbeat.drop(lease)

    threading.Thread(target=work, name=f"etl-{trigger}", daemon=True).start()
    return [StartedRun(lease.run_id, name) for lease, name in zip(leases, names, strict=True)]


def _begin(engine: Engine, settings: Settings, names: list[str], trigger: str) -> list[Lease]:
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
        duration_ms = int((time.monotonic() - started) * 1000)
        if status == "success" and totals["refused"]:
            status = "degraded"
            error = (
                f"the database refused {totals['refused']} record(s): quarantined as "
                "database_rejected, the others loaded"
            )
        status, error = _finish(
            engine, settings, lease, name, status, (error, detail), failure_point, duration_ms
        )
        # A failed run is an error and a degraded one a warning: LOG_LEVEL=WARNING keeps both.
        level = {"failed": "error", "degraded": "warning"}.get(status, "info")
        getattr(log, level)(
            "etl_run_finished", status=status, error=error, duration_ms=duration_ms, **totals
        )
        return RunResult(
            run_id=lease.run_id,
            source=name,
            status=status,
            records_processed=totals["processed"],
            records_loaded=totals["loaded"],
            records_unchanged=totals["unchanged"],
            records_quarantined=totals["quarantined"],
            records_revised=totals["revised"],
            duration_ms=duration_ms,
            error=error,
            failure_point=failure_point,
        )


def run_failure(exc: Exception, label: str, run_id: str) -> tuple[str, str | None]:
    """A failed run's error, which anyone may read, and its detail (for admins); call it while
    handling `exc`."""
    if isinstance(exc, SourceError | InjectedFault | LeaseLost):
        return redaction.redact(str(exc)), None
    # Anyone may read a run's error: it names the class of failure and where, never the
    # driver's text or SQL, which go to the log and the authenticated run detail.
    kind = "database error" if isinstance(exc, sa.exc.SQLAlchemyError) else "internal error"
    error = f"{kind} while loading {label} (run {run_id})"
    detail = redaction.redact(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    log.error("etl_run_crashed", error=error, detail=detail)
    return error, detail


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
        _record_drift(conn, source, prepared.drift, lease.run_id, now)
        faults.hit(source, "before_checkpoint", batch=number, label=prepared.label)
        save_checkpoint(conn, source, prepared.cursor, lease.run_id, now)
        conn.execute(
            sa.update(etl_runs)
            .where(etl_runs.c.run_id == lease.run_id)
            .values(
                records_processed=etl_runs.c.records_processed + outcome.processed,
                records_loaded=etl_runs.c.records_loaded + outcome.loaded,
                records_unchanged=etl_runs.c.records_unchanged + outcome.unchanged,
                records_quarantined=etl_runs.c.records_quarantined + outcome.quarantined,
                records_revised=etl_runs.c.records_revised + outcome.revised,
                batches_committed=etl_runs.c.batches_committed + 1,
            )
        )
    # Counted only once committed, so a rolled-back batch never shows up in metrics.
    for outcome_name, count in (
        ("loaded", outcome.loaded),
        ("unchanged", outcome.unchanged),
        ("quarantined", outcome.quarantined),
        ("revised", outcome.revised),
    ):
        if count:
            metrics.ETL_RECORDS.labels(source, outcome_name).inc(count)
    return {
        "processed": outcome.processed,
        "loaded": outcome.loaded,
        "unchanged": outcome.unchanged,
        "quarantined": outcome.quarantined,
        "linked": outcome.linked,
        "revised": outcome.revised,
        "refused": refused,
    }


def _record_drift(
    conn: Connection, source: str, drift: DriftReport, run_id: str, now: datetime
) -> None:
    rows = [
        {
            "run_id": run_id,
            "source": source,
            "kind": e.kind,
            "field": e.field,
            "detail": e.detail,
            "confidence": e.confidence,
            "action": e.action,
            "items": e.items,
            "created_at": now,
        }
        for e in drift.events
    ]
    if insert_ignore(conn, drift_events, rows):  # once per run and field, not per batch
        for event in drift.events:
            log.warning("schema_drift", kind=event.kind, field=event.field, detail=event.detail)
            metrics.DRIFT_EVENTS.labels(source, event.kind, event.action).inc()


def _finish(
    engine: Engine,
    settings: Settings,
    lease: Lease,
    name: str,
    status: str,
    errors: tuple[str | None, str | None],
    failure_point: str | None,
    duration_ms: int,
) -> tuple[str, str | None]:
    """Record how the run ended (a success with quarantining drift is "degraded")."""
    now = datetime.now(UTC)
    error, detail = errors
    try:
        with write_transaction(engine) as conn:
            if status == "success" and _drift_quarantined(conn, lease.run_id):
                status = "degraded"
                error = "schema drift: records quarantined (see /drift and /runs/{run_id})"
            conn.execute(
                sa.update(etl_runs)
                .where(etl_runs.c.run_id == lease.run_id)
                .values(
                    status=status,
                    finished_at=now,
                    duration_ms=duration_ms,
                    error=error,
                    error_detail=detail,
                    failure_point=failure_point if status != "success" else None,
                )
            )
            release(conn, lease)
    except sa.exc.SQLAlchemyError as exc:  # the lease expires; the next run marks this one
        log.error("etl_run_not_finalized", error=redaction.redact(str(exc).splitlines()[0]))
    _detect_anomalies(engine, settings, lease.run_id, name, now)
    metrics.ETL_RUNS.labels(name, status).inc()
    metrics.ETL_RUN_DURATION.labels(name, status).observe(duration_ms / 1000)
    if status in ("success", "degraded"):
        metrics.ETL_LAST_SUCCESS.labels(name).set(now.timestamp())
    return status, error


def _drift_quarantined(conn: Connection, run_id: str) -> bool:
    query = sa.select(drift_events.c.id).where(
        drift_events.c.run_id == run_id, drift_events.c.action == "quarantined"
    )
    return conn.execute(query.limit(1)).first() is not None


def _detect_anomalies(
    engine: Engine, settings: Settings, run_id: str, source: str, now: datetime
) -> None:
    """Compare the finished run with its predecessors and its prices with other sources'."""
    try:
        with write_transaction(engine) as conn:
            run = conn.execute(sa.select(etl_runs).where(etl_runs.c.run_id == run_id)).one()
            found = []
            # A replay's size is that of the quarantine, not of its source's runs.
            if run.status in ("success", "degraded") and run.trigger != "replay":
                figures = RunFigures(
                    run.records_processed,
                    run.records_quarantined,
                    run.duration_ms or 0,
                    run.records_loaded + run.records_revised,
                )
                found += compare_run(
                    source,
                    figures,
                    run_history(conn, source, run_id),
                    count_drop=settings.anomaly_count_drop,
                    duration_factor=settings.anomaly_duration_factor,
                    incremental=is_incremental(source),
                )
            found += price_outliers(
                touched_prices(conn, run_id, source),
                source,
                settings.anomaly_price_deviation,
                timedelta(seconds=settings.anomaly_freshness_seconds),
            )
            if found:
                conn.execute(sa.insert(anomalies), [a.row(run_id, now) for a in found])
    except sa.exc.SQLAlchemyError as exc:
        log.error("anomaly_detection_failed", error=str(exc).splitlines()[0])
        return
    for anomaly in found:
        log.warning("anomaly", kind=anomaly.kind, detail=anomaly.detail)
        metrics.ANOMALIES.labels(source, anomaly.kind).inc()
