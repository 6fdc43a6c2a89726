"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kasparro.db.types import BigId, Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "assets",
        sa.Column("asset_id", sa.String(length=160), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_run_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_assets")),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assets_symbol"), ["symbol"], unique=False)

    op.create_table(
        "etl_checkpoints",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("cursor", Json, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_etl_checkpoints")),
    )
    op.create_table(
        "etl_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_etl_locks")),
    )
    op.create_table(
        "etl_runs",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("records_processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("records_loaded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("records_unchanged", sa.Integer(), server_default="0", nullable=False),
        sa.Column("records_quarantined", sa.Integer(), server_default="0", nullable=False),
        sa.Column("batches_committed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failure_point", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_etl_runs")),
    )
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_etl_runs_source_started_at", ["source", "started_at"], unique=False
        )

    op.create_table(
        "identity_reviews",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_asset_id", sa.String(length=200), nullable=False),
        sa.Column("asset_id", sa.String(length=160), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("candidates", Json, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_asset_id", name=op.f("pk_identity_reviews")),
    )
    op.create_table(
        "price_history",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_asset_id", sa.String(length=200), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("asset_id", sa.String(length=160), nullable=False),
        sa.Column("price_usd", sa.Double(), nullable=False),
        sa.Column("market_cap_usd", sa.Double(), nullable=True),
        sa.Column("volume_24h_usd", sa.Double(), nullable=True),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("raw_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "source", "source_asset_id", "observed_at", name=op.f("pk_price_history")
        ),
    )
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_price_history_asset_id_observed_at", ["asset_id", "observed_at"], unique=False
        )

    op.create_table(
        "quarantine",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("raw_id", sa.String(length=64), nullable=False),
        sa.Column("source_asset_id", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        sa.UniqueConstraint("source", "raw_id", name=op.f("uq_quarantine_source_raw_id")),
    )
    op.create_table(
        "raw_payloads",
        sa.Column("raw_id", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("raw_id", name=op.f("pk_raw_payloads")),
    )
    op.create_table(
        "asset_sources",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_asset_id", sa.String(length=200), nullable=False),
        sa.Column("asset_id", sa.String(length=160), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("price_usd", sa.Double(), nullable=False),
        sa.Column("market_cap_usd", sa.Double(), nullable=True),
        sa.Column("volume_24h_usd", sa.Double(), nullable=True),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("raw_id", sa.String(length=64), nullable=False),
        sa.Column("match_method", sa.String(length=32), nullable=False),
        sa.Column("match_score", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.asset_id"], name=op.f("fk_asset_sources_asset_id_assets")
        ),
        sa.PrimaryKeyConstraint("source", "source_asset_id", name=op.f("pk_asset_sources")),
        sa.UniqueConstraint("asset_id", "source", name=op.f("uq_asset_sources_asset_id_source")),
    )
    with op.batch_alter_table("asset_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_sources_symbol"), ["symbol"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("asset_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_sources_symbol"))

    op.drop_table("asset_sources")
    op.drop_table("raw_payloads")
    op.drop_table("quarantine")
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.drop_index("ix_price_history_asset_id_observed_at")

    op.drop_table("price_history")
    op.drop_table("identity_reviews")
    with op.batch_alter_table("etl_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_etl_runs_source_started_at")

    op.drop_table("etl_runs")
    op.drop_table("etl_locks")
    op.drop_table("etl_checkpoints")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assets_symbol"))

    op.drop_table("assets")
