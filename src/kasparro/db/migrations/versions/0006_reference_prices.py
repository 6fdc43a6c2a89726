"""reference prices: the consensus price of each canonical asset, as a time series

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kasparro.db.types import Json, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_prices",
        sa.Column("asset_id", sa.String(length=160), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("price_usd", sa.Double(), nullable=True),
        sa.Column("dispersion_bps", sa.Double(), nullable=True),
        sa.Column("sources_used", sa.Integer(), nullable=False),
        sa.Column("sources_total", sa.Integer(), nullable=False),
        sa.Column("single_source", sa.Boolean(), nullable=False),
        sa.Column("constituents", Json, nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.asset_id"], name=op.f("fk_reference_prices_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("asset_id", "as_of", name=op.f("pk_reference_prices")),
    )


def downgrade() -> None:
    op.drop_table("reference_prices")
