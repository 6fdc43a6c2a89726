"""quarantine reason codes, classified run errors, price corrections; repair of impossible dates

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Besides the schema, the upgrade repairs what earlier versions let in: history dated before 2009
or more than a day ahead of the migration moves to quarantine (with its payload), and each
source asset whose latest value was such a row falls back to its newest remaining observation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from kasparro.db.types import BigId, Json, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(
            sa.Column("reason_code", sa.String(length=32), server_default="invalid", nullable=False)
        )
    with op.batch_alter_table("etl_runs") as batch:
        batch.add_column(sa.Column("error_detail", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("records_revised", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "price_history_revisions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("source_asset_id", sa.String(length=200), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.Column("price_usd", sa.Double(), nullable=False),
        sa.Column("market_cap_usd", sa.Double(), nullable=True),
        sa.Column("volume_24h_usd", sa.Double(), nullable=True),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("raw_id", sa.String(length=64), nullable=False),
        sa.Column("revised_at", UTCDateTime(), nullable=False),
        sa.Column("revised_run_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_history_revisions")),
    )
    op.create_index(
        "ix_price_history_revisions_source_source_asset_id_observed_at",
        "price_history_revisions",
        ["source", "source_asset_id", "observed_at"],
        unique=False,
    )
    _repair_impossible_dates(op.get_bind())


def downgrade() -> None:
    op.drop_index(
        "ix_price_history_revisions_source_source_asset_id_observed_at",
        table_name="price_history_revisions",
    )
    op.drop_table("price_history_revisions")
    with op.batch_alter_table("etl_runs") as batch:
        batch.drop_column("records_revised")
        batch.drop_column("error_detail")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("reason_code")


# The tables as this revision knows them (not the application's schema, which moves on).
_history = sa.table(
    "price_history",
    sa.column("source", sa.String),
    sa.column("source_asset_id", sa.String),
    sa.column("observed_at", UTCDateTime()),
    sa.column("price_usd", sa.Double),
    sa.column("market_cap_usd", sa.Double),
    sa.column("volume_24h_usd", sa.Double),
    sa.column("ingested_at", UTCDateTime()),
    sa.column("run_id", sa.String),
    sa.column("raw_id", sa.String),
)
_latest = sa.table(
    "asset_sources",
    *(sa.column(c.name, c.type) for c in _history.columns),
)
_raw = sa.table("raw_payloads", sa.column("raw_id", sa.String), sa.column("payload", Json))
_quarantine = sa.table(
    "quarantine",
    sa.column("source", sa.String),
    sa.column("raw_id", sa.String),
    sa.column("source_asset_id", sa.String),
    sa.column("reason", sa.Text),
    sa.column("reason_code", sa.String),
    sa.column("payload", Json),
    sa.column("run_id", sa.String),
    sa.column("created_at", UTCDateTime()),
)


def _repair_impossible_dates(conn: sa.Connection) -> None:
    now = datetime.now(UTC)
    horizon = now + timedelta(days=1)

    def impossible(table: Any) -> Any:
        return sa.or_(table.c.observed_at < EARLIEST, table.c.observed_at > horizon)

    bad = conn.execute(
        sa.select(_history, _raw.c.payload)
        .join(_raw, _raw.c.raw_id == _history.c.raw_id, isouter=True)
        .where(impossible(_history))
    ).all()
    for row in bad:
        kept = sa.select(_quarantine.c.raw_id).where(
            _quarantine.c.source == row.source, _quarantine.c.raw_id == row.raw_id
        )
        if conn.execute(kept).first() is not None:
            continue
        future = row.observed_at > horizon
        conn.execute(
            sa.insert(_quarantine).values(
                source=row.source,
                raw_id=row.raw_id,
                source_asset_id=row.source_asset_id,
                reason=f"observed_at: {row.observed_at.isoformat()} is "
                + ("in the future" if future else "before any crypto market existed (2009-01-03)")
                + " (moved out of history by migration 0003)",
                reason_code="future_timestamp" if future else "implausible_timestamp",
                payload=row.payload if row.payload is not None else {"raw_id": row.raw_id},
                run_id=row.run_id,
                created_at=now,
            )
        )
    conn.execute(sa.delete(_history).where(impossible(_history)))
    stuck = conn.execute(
        sa.select(_latest.c.source, _latest.c.source_asset_id).where(impossible(_latest))
    )
    for source, source_asset_id in stuck.all():
        newest = conn.execute(
            sa.select(_history)
            .where(_history.c.source == source, _history.c.source_asset_id == source_asset_id)
            .order_by(_history.c.observed_at.desc())
            .limit(1)
        ).first()
        where = (_latest.c.source == source, _latest.c.source_asset_id == source_asset_id)
        if newest is None:
            # Nothing valid to fall back to: the link goes, and the next valid observation
            # resolves it again (an impossible value must not stay served).
            conn.execute(sa.delete(_latest).where(*where))
            continue
        values = {
            c: getattr(newest, c)
            for c in (
                "price_usd",
                "market_cap_usd",
                "volume_24h_usd",
                "observed_at",
                "ingested_at",
                "run_id",
                "raw_id",
            )
        }
        conn.execute(sa.update(_latest).where(*where).values(**values))
