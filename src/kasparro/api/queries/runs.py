"""ETL runs for /health, /stats and /runs: per-source totals, latest runs, a run's observations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import count_rows
from kasparro.db.engine import write_transaction
from kasparro.db.schema import asset_sources, assets, etl_runs, quarantine, run_comparisons
from kasparro.etl.run_changes import (
    LISTED,
    MOVES,
    StoredChanges,
    observed_changes,
    stored_changes,
    stored_summary,
    summary_values,
)
from kasparro.etl.run_changes import ObservedChanges as ObservedChanges
from kasparro.etl.run_changes import PriceChange as PriceChange
from kasparro.load.sql import insert_ignore
from kasparro.logging import get_logger
from kasparro.sources.registry import source_names

log = get_logger(__name__)

# A degraded run loaded what it could trust and quarantined the rest: it succeeded.
SUCCEEDED = ("success", "degraded")


@dataclass(frozen=True, slots=True)
class SourceRuns:
    runs_total: int = 0
    records_processed_total: int = 0
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    running: bool = False
    latest: dict[str, Any] | None = None  # the latest run, finished or not
    latest_finished: dict[str, Any] | None = None


def source_runs(conn: Connection, sources: Iterable[str]) -> dict[str, SourceRuns]:
    """Per source: run totals, last success and failure, latest run and latest finished run."""
    names = list(dict.fromkeys(sources))
    finished_when = etl_runs.c.finished_at
    aggregates = {
        row.source: row
        for row in conn.execute(
            sa.select(
                etl_runs.c.source,
                sa.func.count().label("runs_total"),
                sa.func.coalesce(sa.func.sum(etl_runs.c.records_processed), 0).label("processed"),
                sa.func.max(sa.case((etl_runs.c.status.in_(SUCCEEDED), finished_when))).label(
                    "last_success_at"
                ),
                sa.func.max(sa.case((etl_runs.c.status == "failed", finished_when))).label(
                    "last_failure_at"
                ),
                sa.func.sum(sa.case((etl_runs.c.status == "running", 1), else_=0)).label("running"),
            )
            .where(etl_runs.c.source.in_(names))
            .group_by(etl_runs.c.source)
        )
    }
    result: dict[str, SourceRuns] = {}
    for name in names:
        agg = aggregates.get(name)
        if agg is None:
            result[name] = SourceRuns()
            continue
        latest = _latest_run(conn, name, finished_only=False)
        finished = (
            latest
            if latest is not None and latest["finished_at"] is not None
            else _latest_run(conn, name, finished_only=True)
        )
        result[name] = SourceRuns(
            runs_total=int(agg.runs_total),
            records_processed_total=int(agg.processed),
            last_success_at=agg.last_success_at,
            last_failure_at=agg.last_failure_at,
            running=bool(agg.running),
            latest=latest,
            latest_finished=finished,
        )
    return result


def _latest_run(conn: Connection, source: str, *, finished_only: bool) -> dict[str, Any] | None:
    stmt = sa.select(etl_runs).where(etl_runs.c.source == source)
    if finished_only:
        stmt = stmt.where(etl_runs.c.finished_at.is_not(None))
    row = conn.execute(
        stmt.order_by(etl_runs.c.started_at.desc(), etl_runs.c.run_id.desc()).limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def counts_by_source(conn: Connection, table: sa.Table) -> dict[str, int]:
    rows = conn.execute(sa.select(table.c.source, sa.func.count()).group_by(table.c.source)).all()
    return {str(source): int(n) for source, n in rows}


def assets_total(conn: Connection) -> int:
    return count_rows(conn, assets, [])


def quarantine_by_source(conn: Connection) -> dict[str, int]:
    return counts_by_source(conn, quarantine)


def quarantine_reasons_by_source(conn: Connection) -> dict[str, dict[str, int]]:
    """Per source, quarantined records per reason_code (most frequent first, then by code)."""
    counted = sa.func.count().label("n")
    rows = conn.execute(
        sa.select(quarantine.c.source, quarantine.c.reason_code, counted)
        .group_by(quarantine.c.source, quarantine.c.reason_code)
        .order_by(quarantine.c.source, counted.desc(), quarantine.c.reason_code)
    ).all()
    result: dict[str, dict[str, int]] = {}
    for source, code, n in rows:
        result.setdefault(str(source), {})[str(code)] = int(n)
    return result


def asset_sources_by_source(conn: Connection) -> dict[str, int]:
    return counts_by_source(conn, asset_sources)


def sources_with_runs(conn: Connection) -> list[str]:
    present = set(conn.scalars(sa.select(etl_runs.c.source).distinct()))
    return [name for name in source_names() if name in present]


# What anyone may read of a run; `error_detail` (driver text, SQL, trace) is for admins only.
_PUBLIC = [c for c in etl_runs.c if c.name != "error_detail"]


def runs_page(
    conn: Connection, *, source: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where: list[sa.ColumnElement[bool]] = []
    if source is not None:
        where.append(etl_runs.c.source == source)
    if status is not None:
        where.append(etl_runs.c.status == status)
    rows = conn.execute(
        sa.select(*_PUBLIC)
        .where(*where)
        .order_by(etl_runs.c.started_at.desc(), etl_runs.c.run_id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [dict(row._mapping) for row in rows], count_rows(conn, etl_runs, where)


def run(conn: Connection, run_id: str, *, with_detail: bool = False) -> dict[str, Any] | None:
    columns = etl_runs.c if with_detail else _PUBLIC
    row = conn.execute(sa.select(*columns).where(etl_runs.c.run_id == run_id)).first()
    return dict(row._mapping) if row is not None else None


def compare_observations(
    conn: Connection, source: str, run_a: str, run_b: str, *, listed: int, moves: int
) -> ObservedChanges:
    """What run b observed compared with run a (see etl/run_changes.py and `comparison`)."""
    return comparison(conn, source, run_a, run_b, listed=listed, moves=moves).changes


# Where a comparison comes from: recorded when run b finished (run_changes, b and the run
# before it), stored on the pair's first request (run_comparisons), or computed now.
Origin = Literal["recorded", "first_request", "computed"]


@dataclass(frozen=True, slots=True)
class Comparison:
    changes: ObservedChanges
    origin: Origin
    computed_at: datetime | None  # None: computed now, and not stored


def comparison(
    conn: Connection, source: str, run_a: str, run_b: str, *, listed: int, moves: int
) -> Comparison:
    """Run b's recorded comparison when run a is the run before it; else the pair's, stored by
    its first request; else computed from the two runs' history rows, and stored when both runs
    have finished (their rows no longer change; a run still running is compared anew each
    time). Merges and splits since are followed when a stored one is read (`read_summary`)."""
    recorded = stored_changes(conn, run_a, run_b, listed=listed, moves=moves)
    if recorded is not None:
        return Comparison(recorded.changes, "recorded", recorded.computed_at)
    stored = stored_comparison(conn, run_a, run_b, listed=listed, moves=moves)
    if stored is not None:
        return Comparison(stored.changes, "first_request", stored.computed_at)
    if listed > LISTED or moves > MOVES:  # more than a stored one keeps
        changes = observed_changes(conn, source, run_a, run_b, listed=listed, moves=moves)
        return Comparison(changes, "computed", None)
    # Asked before the rows are read: a run that finishes in between is not stored half-read.
    keep = _finished(conn, run_a, run_b)
    changes = observed_changes(conn, source, run_a, run_b, listed=LISTED, moves=MOVES)
    computed_at = _store(conn, source, run_a, run_b, changes) if keep else None
    first = replace(
        changes,
        added=changes.added[:listed],
        removed=changes.removed[:listed],
        moves=changes.moves[:moves],
    )
    return Comparison(first, "computed" if computed_at is None else "first_request", computed_at)


def stored_comparison(
    conn: Connection, run_a: str, run_b: str, *, listed: int, moves: int
) -> StoredChanges | None:
    """The pair's comparison stored by its first request, when it holds as many ids and moves
    as asked for; None otherwise."""
    return stored_summary(
        conn,
        sa.select(run_comparisons).where(
            run_comparisons.c.run_a_id == run_a, run_comparisons.c.run_b_id == run_b
        ),
        listed=listed,
        moves=moves,
    )


def _finished(conn: Connection, *run_ids: str) -> bool:
    finished = conn.scalar(
        sa.select(sa.func.count()).where(
            etl_runs.c.run_id.in_(set(run_ids)),
            etl_runs.c.finished_at.is_not(None),
            etl_runs.c.status != "running",
        )
    )
    return finished == len(set(run_ids))


def _store(
    conn: Connection, source: str, run_a: str, run_b: str, changes: ObservedChanges
) -> datetime | None:
    """Write the pair's comparison (once: a concurrent first request's stays); when it was
    computed, or None when it could not be written (logged: the next request computes it)."""
    now = datetime.now(UTC)
    row = {"run_a_id": run_a, "run_b_id": run_b, "source": source, "computed_at": now}
    try:
        # Its own short transaction: the caller's connection only reads.
        with write_transaction(conn.engine, serialized=False) as writer:
            insert_ignore(writer, run_comparisons, [{**row, **summary_values(changes)}])
    except sa.exc.SQLAlchemyError as exc:
        log.error("run_comparison_not_stored", error=str(exc).splitlines()[0])
        return None
    return now
