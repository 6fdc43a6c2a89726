"""identity curation: pins (the persisted crosswalk), the audit trail, redirects, review decisions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kasparro.db.types import BigId, Json, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_audit",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("asset_id", sa.String(length=160), nullable=True),
        sa.Column("other_asset_id", sa.String(length=160), nullable=True),
        sa.Column("before", Json, nullable=False),
        sa.Column("after", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_audit")),
    )
    op.create_index("ix_identity_audit_asset_id", "identity_audit", ["asset_id"])
    op.create_index("ix_identity_audit_other_asset_id", "identity_audit", ["other_asset_id"])
    op.create_table(
        "identity_pins",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_asset_id", sa.String(length=200), nullable=False),
        sa.Column("asset_id", sa.String(length=160), nullable=False),
        sa.Column("audit_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.asset_id"],
            name=op.f("fk_identity_pins_asset_id_assets"),
        ),
        sa.PrimaryKeyConstraint("source", "source_asset_id", name=op.f("pk_identity_pins")),
    )
    op.create_index("ix_identity_pins_asset_id", "identity_pins", ["asset_id"])
    op.create_table(
        "identity_redirects",
        sa.Column("asset_id", sa.String(length=160), nullable=False),
        sa.Column("target_asset_id", sa.String(length=160), nullable=False),
        sa.Column("audit_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_asset_id"],
            ["assets.asset_id"],
            name=op.f("fk_identity_redirects_target_asset_id_assets"),
        ),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_identity_redirects")),
    )
    with op.batch_alter_table("identity_reviews") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), server_default="open", nullable=False)
        )
        batch.add_column(sa.Column("decided_by", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("decided_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("decided_asset_id", sa.String(length=160), nullable=True))
        batch.add_column(sa.Column("audit_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("identity_reviews") as batch:
        batch.drop_column("audit_id")
        batch.drop_column("decided_asset_id")
        batch.drop_column("decided_at")
        batch.drop_column("decided_by")
        batch.drop_column("status")
    op.drop_table("identity_redirects")
    op.drop_index("ix_identity_pins_asset_id", table_name="identity_pins")
    op.drop_table("identity_pins")
    op.drop_index("ix_identity_audit_other_asset_id", table_name="identity_audit")
    op.drop_index("ix_identity_audit_asset_id", table_name="identity_audit")
    op.drop_table("identity_audit")
