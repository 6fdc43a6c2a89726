"""Keep PostgreSQL's planner statistics in step with a large load.

A first load adds tens of thousands of identity rows a minute, faster than autovacuum gets to
re-analyze them; planning with the statistics of a near-empty table, PostgreSQL scans whole
tables where an index probe is right, and each batch gets slower than the one before.

Worse than a small table is a new source: statistics that have seen only CoinGecko's rows
estimate one row for `source = 'coinpaprika'` however many there are, and the planner then
re-reads a batch's whole id list for every row of that source (seconds per lookup, in the load
and in every unchanged rerun after it). So a source the statistics do not know yet is analyzed
for as soon as its first batch is in.
"""

from __future__ import annotations

import contextvars
import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.logging import get_logger

log = get_logger(__name__)

# The ANALYZE of the columns a batch looks rows up by (identity resolution's keys), as the
# tables' owner: before PostgreSQL 17 only the owner may ANALYZE, and the ETL runs as the
# application role (migration 0011 defines the function).
ANALYZE_IDENTITY = "SELECT kasparro_analyze_identity()"
# Below this many new rows a plan over stale statistics costs next to nothing.
MIN_GROWTH = 10_000
# A source with this many rows the statistics do not know of is worth an ANALYZE (a small
# source's one-row estimate is near enough; it may never make the most-common values).
UNSEEN_ROWS = 500
# Sources (with a checkpoint) with UNSEEN_ROWS rows that asset_sources' statistics have not seen.
UNSEEN_SOURCES = sa.text(
    """
    SELECT c.source FROM etl_checkpoints c
    WHERE (
        SELECT count(*) FROM (
          SELECT 1 FROM asset_sources a WHERE a.source = c.source LIMIT :rows
        ) AS enough
      ) >= :rows
      AND NOT EXISTS (
        SELECT 1 FROM pg_stats s
        WHERE s.schemaname = current_schema() AND s.tablename = 'asset_sources'
          AND s.attname = 'source' AND c.source = ANY(s.most_common_vals::text::text[])
      )
    """
)


class PlannerStatistics:
    """Counts the identity rows a run adds; ANALYZEs once they outgrow what the planner knows.

    The ANALYZE runs on a connection and thread of its own, beside the next batches (it takes
    no lock that a load's inserts wait for); `wait` returns once it is done.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._grown = 0
        self._analyzing: threading.Thread | None = None
        self._new_sources_analyzed = False

    def grew(self, rows: int) -> bool:
        """Record `rows` new rows (committed); returns whether an ANALYZE was started."""
        if self._engine.dialect.name != "postgresql" or rows <= 0:
            return False
        self._grown += rows
        if self._analyzing and self._analyzing.is_alive():
            return False
        if not self._new_source() and not self._outgrown():
            return False
        self._grown = 0
        context = contextvars.copy_context()  # it logs with the run's context
        self._analyzing = threading.Thread(
            target=context.run, args=(self._analyze,), name="analyze", daemon=True
        )
        self._analyzing.start()
        return True

    def _new_source(self) -> bool:
        """Whether a source with UNSEEN_ROWS rows is unknown to the statistics (asked in the
        first batches of a run only, and until it is analyzed once)."""
        if self._new_sources_analyzed or self._grown > 4 * UNSEEN_ROWS:
            return False
        with self._engine.connect() as conn:
            unseen = list(conn.scalars(UNSEEN_SOURCES, {"rows": UNSEEN_ROWS}))
        if unseen:
            self._new_sources_analyzed = True
            log.info("analyze_for_new_sources", sources=unseen)
        return bool(unseen)

    def _outgrown(self) -> bool:
        if self._grown < MIN_GROWTH:
            return False
        with self._engine.connect() as conn:
            # reltuples is what the planner believes: -1 before the first ANALYZE.
            known = conn.scalar(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = 'asset_sources'::regclass")
            )
        return self._grown >= (known or 0)

    def wait(self) -> None:
        if self._analyzing is not None:
            self._analyzing.join()

    def _analyze(self) -> None:
        # SKIP_LOCKED (in the function): if autovacuum is analyzing a table, it does the job.
        try:
            with self._engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    ANALYZE_IDENTITY
                )
        except sa.exc.SQLAlchemyError as exc:  # plans stay as they were; the load goes on
            log.warning("analyze_failed", error=str(exc).splitlines()[0])
