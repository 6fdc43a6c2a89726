"""price_history range-partitioned by month on PostgreSQL

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

PostgreSQL only (SQLite keeps the plain table): the existing table is rewritten as a partitioned
one, month by month, in the migration's transaction, and the upgrade fails (rolling everything
back) unless every row arrived. See kasparro.db.partitions for the layout and why. The
downgrade copies the rows back into a plain table.
"""

from __future__ import annotations

from alembic import op

from kasparro.db import partitions

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or partitions.is_partitioned(conn):
        return
    partitions.convert_to_partitioned(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql" or not partitions.is_partitioned(conn):
        return
    partitions.convert_to_plain(conn)
