"""console indexes: quarantined records by run and by reason, assets by the start of the name

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

The console (and /quarantine) lists a run's quarantined records and a source's by reason,
newest first; both read every quarantined record without these. Its name search looks up the
start of a name, case-insensitively: an index on lower(name) in code-point order (COLLATE "C"
on PostgreSQL, whatever the database's locale; SQLite's own order is by code point), so a
prefix is one range of it and its first rows, in order, end the scan.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_quarantine_run_id_id", "quarantine", ["run_id", "id"])
    op.create_index(
        "ix_quarantine_source_reason_code_id", "quarantine", ["source", "reason_code", "id"]
    )
    collation = ' COLLATE "C"' if op.get_bind().dialect.name == "postgresql" else ""
    op.execute(f"CREATE INDEX ix_assets_name_lower ON assets ((lower(name){collation}))")


def downgrade() -> None:
    op.drop_index("ix_assets_name_lower", table_name="assets")
    op.drop_index("ix_quarantine_source_reason_code_id", table_name="quarantine")
    op.drop_index("ix_quarantine_run_id_id", table_name="quarantine")
