"""Planner statistics kept in step with a large load (PostgreSQL only; SQLite needs none)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.db.planner_stats import MIN_GROWTH, PlannerStatistics


def _reltuples(engine: Engine) -> float:
    with engine.connect() as conn:
        query = "SELECT reltuples FROM pg_class WHERE oid = 'asset_sources'::regclass"
        return float(conn.scalar(sa.text(query)) or 0)


def test_tables_are_analyzed_once_a_run_outgrows_what_the_planner_knows(engine: Engine) -> None:
    stats = PlannerStatistics(engine)
    if engine.dialect.name != "postgresql":
        assert stats.grew(MIN_GROWTH * 10) is False
        return
    assert _reltuples(engine) == -1  # never analyzed
    assert stats.grew(MIN_GROWTH - 1) is False
    assert _reltuples(engine) == -1
    assert stats.grew(1) is True
    stats.wait()
    assert _reltuples(engine) == 0  # analyzed: the planner knows the table is empty
    assert stats.grew(0) is False
