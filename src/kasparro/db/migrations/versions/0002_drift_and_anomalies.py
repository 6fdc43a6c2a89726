"""drift events and anomalies

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kasparro.db.types import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_events")),
        sa.UniqueConstraint(
            "run_id", "kind", "field", name=op.f("uq_drift_events_run_id_kind_field")
        ),
    )
    op.create_index(
        "ix_drift_events_source_created_at", "drift_events", ["source", "created_at"], unique=False
    )
    op.create_table(
        "anomalies",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=160), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("baseline", sa.Double(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
    )
    op.create_index("ix_anomalies_created_at", "anomalies", ["created_at"], unique=False)
    op.create_index(op.f("ix_anomalies_run_id"), "anomalies", ["run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_anomalies_run_id"), table_name="anomalies")
    op.drop_index("ix_anomalies_created_at", table_name="anomalies")
    op.drop_table("anomalies")
    op.drop_index("ix_drift_events_source_created_at", table_name="drift_events")
    op.drop_table("drift_events")
