"""What a run observed compared with another run of its source, and each finished run's
comparison with the run before it, written once when it ends (table run_changes).

Comparing two full runs reads both runs' history rows: hundreds of thousands a side, a few
hundred milliseconds at best, where a page has fifty. The usual comparison, a run with the one
before it, is computed here when the run finishes (`record_run_changes`, called by
etl/run_record.py) and read back by /runs/compare and the console; any other pair is computed
when first asked (`observed_changes`, from the index on price_history (run_id, source, ...), so
it reads those two runs' rows and no others) and, when both runs have finished, stored by
api/queries/runs.py in run_comparisons, a row like run_changes' (`summary_values`,
`read_summary`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Connection, Engine

from kasparro.db.engine import write_transaction
from kasparro.db.schema import asset_sources, etl_runs, price_history, run_changes
from kasparro.load.sql import insert_ignore
from kasparro.logging import get_logger

log = get_logger(__name__)

# What a summary keeps: as many as /runs/compare lists (api/routes/runs.py).
LISTED = 100
MOVES = 10


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


def observed_changes(
    conn: Connection, source: str, run_a: str, run_b: str, *, listed: int, moves: int
) -> ObservedChanges:
    """Source assets observed by run b and not a (added), by a and not b (removed), and the
    largest price moves of those observed by both, computed by the database in one statement.

    A run observed a source asset when it wrote a history row of it; its price is that of the
    newest such row (by observed_at). Only counts and the first rows come back: two full runs
    are hundreds of thousands of rows a side, which Python need never see.

    Each run's rows are found by the index on run_id (0009), its newest row per source asset
    kept (DISTINCT ON on PostgreSQL), and the two runs paired by a full join (FULL JOIN: SQLite
    3.39 or later).
    """
    a = _newest_of_run(conn, source, run_a, "a")
    b = _newest_of_run(conn, source, run_b, "b")
    # One row per source asset: its price in each run (NULL: not observed by that run).
    paired = (
        sa.select(
            sa.func.coalesce(a.c.key, b.c.key).label("key"),
            a.c.price_usd.label("price_a"),
            b.c.price_usd.label("price_b"),
            b.c.observed_at.label("observed_b"),
        )
        .select_from(a.join(b, a.c.key == b.c.key, full=True))
        .cte("paired")
    )
    # Sorted as Python sorts strings (by code point), not by the database's locale.
    key = sa.collate(paired.c.key, "C") if conn.dialect.name == "postgresql" else paired.c.key
    only_a = paired.c.price_b.is_(None)
    only_b = paired.c.price_a.is_(None)
    change = (paired.c.price_b - paired.c.price_a) / paired.c.price_a * 100
    empty = sa.null()

    def listing(kind: str, where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        first = (
            sa.select(sa.literal(kind).label("kind"), paired.c.key)
            .where(where)
            .order_by(key)
            .limit(listed)
            .subquery()
        )
        return sa.select(
            first.c.kind,
            first.c.key,
            sa.cast(empty, sa.String),
            sa.cast(empty, sa.Double),
            sa.cast(empty, sa.Double),
            sa.cast(empty, sa.Double),
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
    top = (
        sa.select(
            paired.c.key,
            paired.c.observed_b,
            paired.c.price_a,
            paired.c.price_b,
            change.label("change"),
        )
        .where(both)
        .order_by(sa.func.abs(change).desc(), key)
        .limit(moves)
        .subquery("top")
    )
    # The asset of run b's row, for the few moves only: a primary-key read each.
    moved = sa.select(
        sa.literal("move"),
        top.c.key,
        price_history.c.asset_id,
        top.c.price_a,
        top.c.price_b,
        top.c.change,
    ).select_from(
        top.join(
            price_history,
            (price_history.c.source == source)
            & (price_history.c.source_asset_id == top.c.key)
            & (price_history.c.observed_at == top.c.observed_b),
        )
    )
    parts = [
        counted("added_count", only_b),
        counted("removed_count", only_a),
        listing("added", only_b),
        listing("removed", only_a),
        moved,
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


def _newest_of_run(conn: Connection, source: str, run_id: str, name: str) -> sa.Subquery:
    """Each source asset the run observed, with the time and price of its newest row."""
    history = price_history.c
    of_run = (history.source == source, history.run_id == run_id)
    if conn.dialect.name == "postgresql":
        # DISTINCT ON keeps each asset's first row in index order: no sort, no window.
        return (
            sa.select(history.source_asset_id.label("key"), history.observed_at, history.price_usd)
            .where(*of_run)
            .ext(distinct_on(history.source_asset_id))
            .order_by(history.source_asset_id.desc(), history.observed_at.desc())
            .subquery(name)
        )
    ranked = (
        sa.select(
            history.source_asset_id.label("key"),
            history.observed_at,
            history.price_usd,
            sa.func.row_number()
            .over(partition_by=history.source_asset_id, order_by=history.observed_at.desc())
            .label("rank"),
        )
        .where(*of_run)
        .subquery()
    )
    return (
        sa.select(ranked.c.key, ranked.c.observed_at, ranked.c.price_usd)
        .where(ranked.c.rank == 1)
        .subquery(name)
    )


def previous_run(conn: Connection, run_id: str) -> str | None:
    """The run of the same source that started last before `run_id` (ties by run id, as the
    runs list orders them); None for a source's first run or an unknown run."""
    this = conn.execute(
        sa.select(etl_runs.c.source, etl_runs.c.started_at).where(etl_runs.c.run_id == run_id)
    ).first()
    if this is None:
        return None
    earlier = sa.or_(
        etl_runs.c.started_at < this.started_at,
        sa.and_(etl_runs.c.started_at == this.started_at, etl_runs.c.run_id < run_id),
    )
    found = conn.scalar(
        sa.select(etl_runs.c.run_id)
        .where(etl_runs.c.source == this.source, earlier)
        .order_by(etl_runs.c.started_at.desc(), etl_runs.c.run_id.desc())
        .limit(1)
    )
    return None if found is None else str(found)


def record_run_changes(engine: Engine, run_id: str) -> bool:
    """Compare a finished run with the run before it and store the result (once: a run that has
    its summary keeps it); False when there is nothing to compare with. Never raises: a run's
    outcome is recorded already, and a missing summary only makes its comparison slower."""
    try:
        with engine.connect() as conn:
            source = conn.scalar(sa.select(etl_runs.c.source).where(etl_runs.c.run_id == run_id))
            previous = previous_run(conn, run_id)
            if source is None or previous is None:
                return False
            changes = observed_changes(conn, source, previous, run_id, listed=LISTED, moves=MOVES)
        row = {
            "run_id": run_id,
            "source": source,
            "previous_run_id": previous,
            **summary_values(changes),
            "computed_at": datetime.now(UTC),
        }
        with write_transaction(engine, serialized=False) as conn:
            insert_ignore(conn, run_changes, [row])
    except sa.exc.SQLAlchemyError as exc:
        log.error("run_changes_not_recorded", error=str(exc).splitlines()[0])
        return False
    return True


def summary_values(changes: ObservedChanges) -> dict[str, Any]:
    """A comparison as a run_changes or run_comparisons row holds it (LISTED ids, MOVES moves)."""
    return {
        "added_count": changes.added_count,
        "removed_count": changes.removed_count,
        "added": changes.added,
        "removed": changes.removed,
        "moves": [
            [m.source_asset_id, m.asset_id, m.price_a, m.price_b, m.change_pct]
            for m in changes.moves
        ],
    }


@dataclass(frozen=True, slots=True)
class StoredChanges:
    changes: ObservedChanges
    computed_at: datetime


def read_summary(conn: Connection, row: sa.Row[Any], *, listed: int, moves: int) -> StoredChanges:
    """A stored comparison (run_changes or run_comparisons row), its first `listed` ids and
    `moves` moves. A merge or split since moves members (and their history) to other assets:
    each move links to its source asset's asset now, as the history rows would."""
    kept = row.moves[:moves]
    now_in = dict(
        conn.execute(
            sa.select(asset_sources.c.source_asset_id, asset_sources.c.asset_id).where(
                asset_sources.c.source == row.source,
                asset_sources.c.source_asset_id.in_([str(m[0]) for m in kept]),
            )
        ).all()
    )
    return StoredChanges(
        ObservedChanges(
            added_count=int(row.added_count),
            removed_count=int(row.removed_count),
            added=[str(i) for i in row.added][:listed],
            removed=[str(i) for i in row.removed][:listed],
            moves=[
                PriceChange(str(k), str(now_in.get(k, asset_id)), float(pa), float(pb), float(pct))
                for k, asset_id, pa, pb, pct in kept
            ],
        ),
        row.computed_at,
    )


def stored_changes(
    conn: Connection, run_a: str, run_b: str, *, listed: int, moves: int
) -> StoredChanges | None:
    """Run b's stored comparison, when run a is the run before it and the summary holds as many
    ids and moves as asked for; None otherwise (compute it with `observed_changes`)."""
    return stored_summary(
        conn,
        sa.select(run_changes).where(
            run_changes.c.run_id == run_b, run_changes.c.previous_run_id == run_a
        ),
        listed=listed,
        moves=moves,
    )


def stored_summary(
    conn: Connection, query: sa.Select[Any], *, listed: int, moves: int
) -> StoredChanges | None:
    """The comparison row `query` finds (run_changes or run_comparisons), when it holds as many
    ids and moves as asked for; None otherwise."""
    if listed > LISTED or moves > MOVES:
        return None
    row = conn.execute(query).first()
    return None if row is None else read_summary(conn, row, listed=listed, moves=moves)
