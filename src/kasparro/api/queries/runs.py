"""ETL runs for /health, /stats and /runs: per-source totals, latest runs, a run's observations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import count_rows
from kasparro.db.schema import asset_sources, assets, etl_runs, price_history, quarantine
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


@dataclass(frozen=True, slots=True)
class PriceChange:
    source_asset_id: str
    asset_id: str
    price_a: float
    price_b: float
    change_pct: float


@dataclass(frozen=True, slots=True)
class ObservedChanges:
    """What two runs of one source observed, compared (see `compare_observations`)."""

    added_count: int
    removed_count: int
    added: list[str]  # source asset ids, the first `listed` in byte order
    removed: list[str]
    moves: list[PriceChange]  # by absolute relative change, largest first


def compare_observations(
    conn: Connection, source: str, run_a: str, run_b: str, *, listed: int, moves: int
) -> ObservedChanges:
    """Source assets observed by run b and not a (added), by a and not b (removed), and the
    largest price moves of those observed by both, computed by the database in one statement.

    A run observed a source asset when it wrote a history row of it; its price is that of the
    newest such row (by observed_at). Only counts and the first rows come back: two full runs
    are hundreds of thousands of rows a side, which Python need never see.
    """
    newest = (
        sa.select(
            price_history.c.run_id,
            price_history.c.source_asset_id,
            price_history.c.asset_id,
            price_history.c.price_usd,
            sa.func.row_number()
            .over(
                partition_by=(price_history.c.source_asset_id, price_history.c.run_id),
                order_by=price_history.c.observed_at.desc(),
            )
            .label("rank"),
        )
        # The source bound narrows the scan to the primary key's leading column.
        .where(price_history.c.source == source, price_history.c.run_id.in_([run_a, run_b]))
        .subquery("newest")
    )

    def of_run(run_id: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.max(sa.case((newest.c.run_id == run_id, column)))

    # One row per source asset: its price in each run (NULL: not observed by that run).
    paired = (
        sa.select(
            newest.c.source_asset_id.label("key"),
            of_run(run_b, newest.c.asset_id).label("asset_id"),
            of_run(run_a, newest.c.price_usd).label("price_a"),
            of_run(run_b, newest.c.price_usd).label("price_b"),
        )
        .where(newest.c.rank == 1)
        .group_by(newest.c.source_asset_id)
        .cte("paired")
    )
    # Sorted as Python sorts strings (by code point), not by the database's locale.
    key = sa.collate(paired.c.key, "C") if conn.dialect.name == "postgresql" else paired.c.key
    only_a = paired.c.price_b.is_(None)
    only_b = paired.c.price_a.is_(None)
    change = (paired.c.price_b - paired.c.price_a) / paired.c.price_a * 100
    empty = sa.null()

    def part(
        kind: str,
        *columns: sa.ColumnElement[Any],
        where: sa.ColumnElement[bool],
        order: Any,
        limit: int,
    ) -> sa.Subquery:
        stmt = sa.select(sa.literal(kind).label("kind"), *columns).where(where)
        return stmt.order_by(*order).limit(limit).subquery()

    def listing(kind: str, where: sa.ColumnElement[bool]) -> sa.Subquery:
        return part(
            kind,
            paired.c.key,
            sa.cast(empty, sa.String).label("asset_id"),
            sa.cast(empty, sa.Double).label("price_a"),
            sa.cast(empty, sa.Double).label("price_b"),
            sa.cast(empty, sa.Double).label("change"),
            where=where,
            order=[key],
            limit=listed,
        )

    def counted(kind: str, where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        return sa.select(
            sa.literal(kind),
            sa.cast(empty, sa.String),
            sa.cast(empty, sa.String),
            sa.cast(sa.func.count(), sa.Double),
            sa.cast(empty, sa.Double),
            sa.cast(empty, sa.Double),
        ).where(where)

    both = paired.c.price_a.is_not(None) & paired.c.price_b.is_not(None) & (paired.c.price_a > 0)
    moved = part(
        "move",
        paired.c.key,
        paired.c.asset_id,
        paired.c.price_a,
        paired.c.price_b,
        change.label("change"),
        where=both,
        order=[sa.func.abs(change).desc(), key],
        limit=moves,
    )
    parts = [
        counted("added_count", only_b),
        counted("removed_count", only_a),
        *(sa.select(p) for p in (listing("added", only_b), listing("removed", only_a), moved)),
    ]
    rows = conn.execute(sa.union_all(*parts)).all()
    counts = {kind: int(value) for kind, _, _, value, _, _ in rows if kind.endswith("_count")}
    return ObservedChanges(
        added_count=counts.get("added_count", 0),
        removed_count=counts.get("removed_count", 0),
        added=sorted(str(r[1]) for r in rows if r[0] == "added"),
        removed=sorted(str(r[1]) for r in rows if r[0] == "removed"),
        moves=sorted(
            (
                PriceChange(str(k), str(asset_id), float(pa), float(pb), float(pct))
                for kind, k, asset_id, pa, pb, pct in rows
                if kind == "move"
            ),
            key=lambda m: (-abs(m.change_pct), m.source_asset_id),
        ),
    )
