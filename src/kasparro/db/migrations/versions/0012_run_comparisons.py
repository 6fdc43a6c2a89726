"""run comparisons: any two finished runs compared once, on first request

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

A run and the one before it are compared when the run ends (run_changes, 0009); any other pair
was computed on every request from both runs' history rows, 0.4-1.1 s at 200,000 a side. A
comparison of two finished runs is now written the first time it is asked for (run_comparisons,
keyed by the pair; kasparro.api.queries.runs) and read back by primary key after that.

The first computation reads the two runs' rows through the index on run_id (0009). An index on
(run_id, source, source_asset_id, observed_at) carrying the price made it about twice as fast,
but cost about 80 bytes per history row (7.7 GB at 100 million rows, 14% of the table and its
indexes, and more work on every insert): too much for a request answered once per pair.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kasparro.db.types import Json, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_comparisons",
        sa.Column("run_a_id", sa.String(length=36), nullable=False),
        sa.Column("run_b_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("added_count", sa.Integer(), nullable=False),
        sa.Column("removed_count", sa.Integer(), nullable=False),
        sa.Column("added", Json, nullable=False),
        sa.Column("removed", Json, nullable=False),
        sa.Column("moves", Json, nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_a_id", "run_b_id", name=op.f("pk_run_comparisons")),
    )


def downgrade() -> None:
    op.drop_table("run_comparisons")
