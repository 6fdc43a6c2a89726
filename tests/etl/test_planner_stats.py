"""Planner statistics kept in step with a large load (PostgreSQL only; SQLite needs none)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.db.planner_stats import MIN_GROWTH, UNSEEN_ROWS, PlannerStatistics
from kasparro.db.schema import asset_sources, assets, etl_checkpoints


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


def _add_source(engine: Engine, source: str, rows: int) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            assets.insert(),
            [
                {"asset_id": f"{source}-{n}", "name": "x", "created_at": now, "created_run_id": "r"}
                for n in range(rows)
            ],
        )
        conn.execute(
            asset_sources.insert(),
            [
                {
                    "source": source,
                    "source_asset_id": str(n),
                    "asset_id": f"{source}-{n}",
                    "name": "x",
                    "price_usd": 1.0,
                    "observed_at": now,
                    "ingested_at": now,
                    "run_id": "r",
                    "raw_id": "0" * 64,
                    "match_method": "new",
                    "match_score": 0.0,
                }
                for n in range(rows)
            ],
        )
        conn.execute(
            etl_checkpoints.insert(),
            {"source": source, "cursor": {}, "run_id": "r", "updated_at": now},
        )


@pytest.mark.parametrize(
    "database_url", ["postgresql"], indirect=True
)  # SQLite has no ANALYZE wait
def test_a_source_the_statistics_have_not_seen_is_analyzed_after_its_first_batch(
    engine: Engine,
) -> None:
    # Statistics without the source estimate `source = ...` at one row, however many there are.
    # The session's PostgreSQL keeps earlier tests' statistics: names no other test uses.
    tag = uuid.uuid4().hex[:8]
    big, small, other = f"unseen-{tag}", f"small-{tag}", f"later-{tag}"
    _add_source(engine, big, UNSEEN_ROWS)
    first = PlannerStatistics(engine)
    assert first.grew(UNSEEN_ROWS) is True  # below MIN_GROWTH, but new to the planner
    first.wait()
    _add_source(engine, small, 5)  # a small source: its estimate is near enough
    assert PlannerStatistics(engine).grew(5) is False
    _add_source(engine, other, UNSEEN_ROWS)
    second = PlannerStatistics(engine)
    assert second.grew(UNSEEN_ROWS) is True
    second.wait()
    assert PlannerStatistics(engine).grew(UNSEEN_ROWS) is False  # both known now
    with engine.connect() as conn:
        known = conn.scalar(
            sa.text(
                "SELECT most_common_vals::text FROM pg_stats "
                "WHERE tablename = 'asset_sources' AND attname = 'source'"
            )
        )
    assert big in str(known) and other in str(known)
