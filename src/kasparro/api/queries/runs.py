"""ETL runs for /health, /stats and /runs: per-source totals, latest runs, a run's observations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import count_rows
from kasparro.db.schema import asset_sources, assets, etl_runs, quarantine
from kasparro.etl.run_changes import ObservedChanges as ObservedChanges
from kasparro.etl.run_changes import PriceChange as PriceChange
from kasparro.etl.run_changes import observed_changes, stored_changes
from kasparro.sources.registry import source_names

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
    """What run b observed compared with run a (see etl/run_changes.py): run b's stored summary
    when run a is the run before it, else computed from the two runs' history rows."""
    stored = stored_changes(conn, run_a, run_b, listed=listed, moves=moves)
    if stored is not None:
        return stored.changes
    return observed_changes(conn, source, run_a, run_b, listed=listed, moves=moves)
