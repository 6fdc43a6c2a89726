"""history by asset and source: a narrow index for one source's candles

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

Candles of one source (GET /assets/{id}/candles?source=...) read an asset's observations of that
source over up to years. The (asset_id, observed_at) index carries every history column and
both sources' rows side by side, so a source's 1d candles over 2 years read ~300 of its leaf
pages and discard half the entries. This index, keyed by source too and carrying only price and
volume (INCLUDE, PostgreSQL), holds the same observations in ~140 pages, all of them needed
(README "Years of history"). SQLite gets the key alone. On PostgreSQL it is declared on the
partitioned parent, so every partition, present or attached later, has its own; building it on
a full table takes minutes (about 13 s per 10M rows on two cores) under a lock on writes.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NAME = "ix_price_history_asset_id_source_observed_at"


def upgrade() -> None:
    op.create_index(
        NAME,
        "price_history",
        ["asset_id", "source", "observed_at"],
        postgresql_include=["price_usd", "volume_24h_usd"],
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="price_history")
