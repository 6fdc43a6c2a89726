"""run changes: each finished run's comparison with the run before it; history by run; reviews
by status and time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

Comparing two full runs reads both runs' history rows (hundreds of thousands a side): seconds,
where the console's page has 50 ms. A run's comparison with its predecessor is written once,
when it finishes (kasparro.etl.run_changes), into run_changes. Finding a run's rows needs an
index on price_history.run_id (on PostgreSQL declared on the partitioned parent, so every
partition, present or attached later, has its own; duplicates of one run id are stored once).
The open identity reviews, newest first, come from an index on (status, created_at) instead of
reading and sorting every review. The application role's rights on the new table come from the
owner's default privileges (deploy/postgres/roles.sql), as for every table: rows only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kasparro.db.types import Json, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_changes",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("previous_run_id", sa.String(length=36), nullable=False),
        sa.Column("added_count", sa.Integer(), nullable=False),
        sa.Column("removed_count", sa.Integer(), nullable=False),
        sa.Column("added", Json, nullable=False),
        sa.Column("removed", Json, nullable=False),
        sa.Column("moves", Json, nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_changes")),
    )
    op.create_index("ix_price_history_run_id", "price_history", ["run_id"])
    op.create_index(
        "ix_identity_reviews_status_created_at", "identity_reviews", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_identity_reviews_status_created_at", table_name="identity_reviews")
    op.drop_index("ix_price_history_run_id", table_name="price_history")
    op.drop_table("run_changes")
