"""What a run records about itself: its batches' counts, drift, how it ended (status, a
classified error, its detail), and the anomalies found when it finished. Shared by ETL runs and
replays."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro import metrics, redaction
from kasparro.config import Settings
from kasparro.db.engine import write_transaction
from kasparro.db.schema import anomalies, drift_events, etl_runs
from kasparro.etl.faults import InjectedFault
from kasparro.etl.lease import Lease, release
from kasparro.etl.run_changes import record_run_changes
from kasparro.load.loader import BatchOutcome
from kasparro.load.sql import insert_ignore
from kasparro.logging import get_logger
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


class LeaseLost(RuntimeError):
    pass


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


def conclude(
    engine: Engine,
    settings: Settings,
    lease: Lease,
    name: str,
    ending: tuple[str, str | None, str | None, str | None],
    started: float,
    totals: Mapping[str, int],
    event: str = "etl_run_finished",
) -> RunResult:
    """Record how a run ended and log it: `ending` is (status, error, its detail, failure
    point); a success whose records the database partly refused is degraded."""
    status, error, detail, failure_point = ending
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
    getattr(log, level)(event, status=status, error=error, duration_ms=duration_ms, **totals)
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


def add_batch_to_run(
    conn: Connection, run_id: str, outcome: BatchOutcome, quarantined: int | None = None
) -> None:
    """Add a committed batch's counts to its run (`quarantined`: when not the outcome's)."""
    conn.execute(
        sa.update(etl_runs)
        .where(etl_runs.c.run_id == run_id)
        .values(
            records_processed=etl_runs.c.records_processed + outcome.processed,
            records_loaded=etl_runs.c.records_loaded + outcome.loaded,
            records_unchanged=etl_runs.c.records_unchanged + outcome.unchanged,
            records_quarantined=etl_runs.c.records_quarantined
            + (outcome.quarantined if quarantined is None else quarantined),
            records_revised=etl_runs.c.records_revised + outcome.revised,
            batches_committed=etl_runs.c.batches_committed + 1,
        )
    )


def count_records(source: str, outcome: BatchOutcome, *, quarantined: bool = True) -> None:
    """Metrics of a batch, once committed: a rolled-back batch never shows up in them."""
    for outcome_name, count in (
        ("loaded", outcome.loaded),
        ("unchanged", outcome.unchanged),
        ("quarantined", outcome.quarantined if quarantined else 0),
        ("revised", outcome.revised),
    ):
        if count:
            metrics.ETL_RECORDS.labels(source, outcome_name).inc(count)


def record_drift(
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
    # What it observed against the run before it, for /runs/compare (logs, never raises).
    record_run_changes(engine, lease.run_id)
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
