"""The one schema, on SQLite and PostgreSQL. Migrations in `migrations/` must match it."""

from __future__ import annotations

import sqlalchemy as sa

from kasparro.db.types import BigId, Json, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Every record as received, content-addressed: storing the same payload again is a no-op.
raw_payloads = sa.Table(
    "raw_payloads",
    metadata,
    sa.Column("raw_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
)

# One row per real-world asset, whatever the source.
assets = sa.Table(
    "assets",
    metadata,
    sa.Column("asset_id", sa.String(160), primary_key=True),
    sa.Column("symbol", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_run_id", sa.String(36), nullable=False),
)

# One row per source's asset, linked to exactly one canonical asset, with its latest values.
asset_sources = sa.Table(
    "asset_sources",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_asset_id", sa.String(200), primary_key=True),
    sa.Column("asset_id", sa.String(160), sa.ForeignKey("assets.asset_id"), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("price_usd", sa.Double, nullable=False),
    sa.Column("market_cap_usd", sa.Double),
    sa.Column("volume_24h_usd", sa.Double),
    sa.Column("observed_at", UTCDateTime, nullable=False),
    sa.Column("ingested_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("raw_id", sa.String(64), nullable=False),
    sa.Column("match_method", sa.String(32), nullable=False),
    sa.Column("match_score", sa.Double, nullable=False),
    # A canonical asset holds at most one asset per source.
    sa.UniqueConstraint("asset_id", "source"),
)

# Price history: one row per source asset per observed_at.
price_history = sa.Table(
    "price_history",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_asset_id", sa.String(200), primary_key=True),
    sa.Column("observed_at", UTCDateTime, primary_key=True),
    sa.Column("asset_id", sa.String(160), nullable=False),
    sa.Column("price_usd", sa.Double, nullable=False),
    sa.Column("market_cap_usd", sa.Double),
    sa.Column("volume_24h_usd", sa.Double),
    sa.Column("ingested_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("raw_id", sa.String(64), nullable=False),
    sa.Index("ix_price_history_asset_id_observed_at", "asset_id", "observed_at"),
)

# Values a source corrected: the history row holds the newest values, and each value it replaced
# is kept here with when it was replaced and by which run.
price_history_revisions = sa.Table(
    "price_history_revisions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("source_asset_id", sa.String(200), nullable=False),
    sa.Column("observed_at", UTCDateTime, nullable=False),
    sa.Column("price_usd", sa.Double, nullable=False),
    sa.Column("market_cap_usd", sa.Double),
    sa.Column("volume_24h_usd", sa.Double),
    sa.Column("ingested_at", UTCDateTime, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("raw_id", sa.String(64), nullable=False),
    sa.Column("revised_at", UTCDateTime, nullable=False),
    sa.Column("revised_run_id", sa.String(36), nullable=False),
    sa.Index(
        "ix_price_history_revisions_source_source_asset_id_observed_at",
        "source",
        "source_asset_id",
        "observed_at",
    ),
)

etl_runs = sa.Table(
    "etl_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("records_processed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("records_loaded", sa.Integer, nullable=False, server_default="0"),
    sa.Column("records_unchanged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("records_quarantined", sa.Integer, nullable=False, server_default="0"),
    sa.Column("records_revised", sa.Integer, nullable=False, server_default="0"),
    sa.Column("batches_committed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duration_ms", sa.Integer),
    # Short and classified: what anyone may see. The detail (driver text, SQL, trace; redacted)
    # is shown only to an authenticated caller.
    sa.Column("error", sa.Text),
    sa.Column("error_detail", sa.Text),
    sa.Column("failure_point", sa.String(64)),
    sa.Index("ix_etl_runs_source_started_at", "source", "started_at"),
)

# Per source, its cursor state; written in the same transaction as the data it covers.
etl_checkpoints = sa.Table(
    "etl_checkpoints",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("cursor", Json, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# A lease per source: at most one run of a source at a time, across processes and machines.
etl_locks = sa.Table(
    "etl_locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(36)),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# Records that failed validation, with their reason and payload; never silently dropped.
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("raw_id", sa.String(64), nullable=False),
    sa.Column("source_asset_id", sa.String(200)),
    sa.Column("reason", sa.Text, nullable=False),
    # A short, stable class of the reason (`ambiguous_number`, `database_rejected`, ...).
    sa.Column("reason_code", sa.String(32), nullable=False, server_default="invalid"),
    sa.Column("payload", Json, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "raw_id"),
)

# Source assets whose match was ambiguous: kept separate and reported, never guessed.
identity_reviews = sa.Table(
    "identity_reviews",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_asset_id", sa.String(200), primary_key=True),
    sa.Column("asset_id", sa.String(160), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("candidates", Json, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Differences between a source's payloads and the item schema it is expected to have.
drift_events = sa.Table(
    "drift_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("field", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("confidence", sa.Double, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("run_id", "kind", "field"),
    sa.Index("ix_drift_events_source_created_at", "source", "created_at"),
)

# Runs unlike their predecessors, and prices unlike the other sources' for the same asset.
anomalies = sa.Table(
    "anomalies",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("asset_id", sa.String(160)),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("value", sa.Double),
    sa.Column("baseline", sa.Double),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_anomalies_created_at", "created_at"),
)
