"""Keep PostgreSQL's planner statistics in step with a large load.

A first load adds tens of thousands of identity rows a minute, faster than autovacuum gets to
re-analyze them; planning with the statistics of a near-empty table, PostgreSQL scans whole
tables where an index probe is right, and each batch gets slower than the one before.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

# The columns a batch looks rows up by, in lists of keys (identity resolution); analyzing only
# these keeps each ANALYZE short.
COLUMNS = {
    "assets": ("asset_id", "symbol"),
    "asset_sources": ("source", "source_asset_id", "asset_id", "symbol"),
}
# Below this many new rows a plan over stale statistics costs next to nothing.
MIN_GROWTH = 10_000


class PlannerStatistics:
    """Counts the identity rows a run adds; ANALYZEs once they outgrow what the planner knows."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._grown = 0

    def grew(self, rows: int) -> bool:
        """Record `rows` new rows (committed); returns whether the tables were analyzed."""
        if self._engine.dialect.name != "postgresql" or rows <= 0:
            return False
        self._grown += rows
        if self._grown < MIN_GROWTH:
            return False
        with self._engine.begin() as conn:
            # reltuples is what the planner believes: -1 before the first ANALYZE.
            known = conn.scalar(
                sa.text("SELECT reltuples FROM pg_class WHERE oid = 'asset_sources'::regclass")
            )
            if self._grown < (known or 0):
                return False
            # SKIP_LOCKED: if autovacuum is analyzing a table right now, it does the job.
            tables = ", ".join(f"{table} ({', '.join(cols)})" for table, cols in COLUMNS.items())
            conn.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {tables}")
        self._grown = 0
        return True
