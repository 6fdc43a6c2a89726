"""Keep PostgreSQL's planner statistics in step with a large load.

A first load adds tens of thousands of identity rows a minute, faster than autovacuum gets to
re-analyze them; planning with the statistics of a near-empty table, PostgreSQL scans whole
tables where an index probe is right, and each batch gets slower than the one before.
"""

from __future__ import annotations

import contextvars
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.logging import get_logger

log = get_logger(__name__)

# The columns a batch looks rows up by, in lists of keys (identity resolution); analyzing only
# these keeps each ANALYZE short.
COLUMNS = {
    "assets": ("asset_id", "symbol"),
    "asset_sources": ("source", "source_asset_id", "asset_id", "symbol"),
}
# Below this many new rows a plan over stale statistics costs next to nothing.
MIN_GROWTH = 10_000


class PlannerStatistics:
    """Counts the identity rows a run adds; ANALYZEs once they outgrow what the planner knows.

    The ANALYZE runs on a connection and thread of its own, beside the next batches (it takes
    no lock that a load's inserts wait for); `wait` returns once it is done.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._grown = 0
        self._analyzing: threading.Thread | None = None

    def grew(self, rows: int) -> bool:
        """Record `rows` new rows (committed); returns whether an ANALYZE was started."""
        if self._engine.dialect.name != "postgresql" or rows <= 0:
            return False
        self._grown += rows
        if self._grown < MIN_GROWTH or (self._analyzing and self._analyzing.is_alive()):
            return False
        with self._engine.connect() as conn:
            # reltuples is what the planner believes: -1 before the first ANALYZE.
            known = conn.scalar(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = 'asset_sources'::regclass")
            )
        if self._grown < (known or 0):
            return False
        self._grown = 0
        context = contextvars.copy_context()  # it logs with the run's context
        self._analyzing = threading.Thread(
            target=context.run, args=(self._analyze,), name="analyze", daemon=True
        )
        self._analyzing.start()
        return True

    def wait(self) -> None:
        if self._analyzing is not None:
            self._analyzing.join()

    def _analyze(self) -> None:
        # SKIP_LOCKED: if autovacuum is analyzing a table right now, it does the job.
        tables = ", ".join(f"{table} ({', '.join(cols)})" for table, cols in COLUMNS.items())
        try:
            with self._engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    f"ANALYZE (SKIP_LOCKED) {tables}"
                )
        except sa.exc.SQLAlchemyError as exc:  # plans stay as they were; the load goes on
            log.warning("analyze_failed", error=str(exc).splitlines()[0])
