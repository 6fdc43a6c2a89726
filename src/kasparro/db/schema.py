"""The one schema, on SQLite and PostgreSQL. Migrations in `migrations/` must match it."""

from __future__ import annotations

from typing import Any

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
    # NULL for a coin listed without a ticker (it is resolved by name and id).
    sa.Column("symbol", sa.String(64), nullable=True, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_run_id", sa.String(36), nullable=False),
)
# The console's name search: the start of a name, case-insensitively, in code-point order, so a
# prefix is one range of the index and its first rows come in order. SQLite compares text by
# code point; on PostgreSQL migration 0008 adds COLLATE "C" (which reflection cannot compare).
sa.Index("ix_assets_name_lower", sa.func.lower(assets.c.name))

# One row per source's asset, linked to exactly one canonical asset, with its latest values.
asset_sources = sa.Table(
    "asset_sources",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_asset_id", sa.String(200), primary_key=True),
    sa.Column("asset_id", sa.String(160), sa.ForeignKey("assets.asset_id"), nullable=False),
    sa.Column("symbol", sa.String(64), nullable=True, index=True),  # NULL: listed without one
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
    # Blocking keys of the identity resolver, as of the link (kasparro.identity.evidence):
    # candidates are found by them, so a ticker with `$`, a renamed ticker or none still meets
    # its partner.
    sa.Column("ticker_key", sa.String(64), index=True),
    sa.Column("name_key", sa.String(200), index=True),
    sa.Column("id_key", sa.String(200), index=True),
    # A canonical asset holds at most one asset per source.
    sa.UniqueConstraint("asset_id", "source"),
)

# Price history: one row per source asset per observed_at. On PostgreSQL it is range-partitioned
# by month (migration 0007, db/partitions.py), its asset index carries source, price and volume
# (INCLUDE) and it has a BRIN index on observed_at; this describes the parent, as SQLite has it.
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
    # One source's candles (migration 0010; on PostgreSQL it carries price and volume too).
    sa.Index("ix_price_history_asset_id_source_observed_at", "asset_id", "source", "observed_at"),
    # The rows a run wrote, for its change summaries (run_changes, run_comparisons).
    sa.Index("ix_price_history_run_id", "run_id"),
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


def _comparison_columns() -> list[sa.Column[Any]]:
    """What a stored comparison of two runs holds (etl/run_changes.py `summary_values`)."""
    return [
        sa.Column("added_count", sa.Integer, nullable=False),
        sa.Column("removed_count", sa.Integer, nullable=False),
        sa.Column("added", Json, nullable=False),
        sa.Column("removed", Json, nullable=False),
        sa.Column("moves", Json, nullable=False),
        sa.Column("computed_at", UTCDateTime, nullable=False),
    ]


# What a finished run observed compared with the run of its source before it (etl/run_changes.py):
# counts, the first ids added and removed, the largest price moves; written once, when it ends.
run_changes = sa.Table(
    "run_changes",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("previous_run_id", sa.String(36), nullable=False),
    *_comparison_columns(),
)

# Any other two finished runs of a source compared (api/queries/runs.py), as in run_changes:
# written the first time the pair is asked for, read back after that.
run_comparisons = sa.Table(
    "run_comparisons",
    metadata,
    sa.Column("run_a_id", sa.String(36), primary_key=True),
    sa.Column("run_b_id", sa.String(36), primary_key=True),
    sa.Column("source", sa.String(32), nullable=False),
    *_comparison_columns(),
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
    # A run's records, and a source's by reason, newest first (the console, /quarantine).
    sa.Index("ix_quarantine_run_id_id", "run_id", "id"),
    sa.Index("ix_quarantine_source_reason_code_id", "source", "reason_code", "id"),
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
    # open, then accepted (linked to a candidate), rejected (kept apart) or curated (settled by
    # a merge, split or pin); who decided, when, where the source asset went, and the audit row.
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("decided_by", sa.String(128)),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_asset_id", sa.String(160)),
    sa.Column("audit_id", sa.BigInteger),
    # The open reviews, newest first (the console and /identity/reviews), without reading all.
    sa.Index("ix_identity_reviews_status_created_at", "status", "created_at"),
)

# Every identity correction a person made: who, when, why, and the assets before and after.
identity_audit = sa.Table(
    "identity_audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    # The asset the action leaves the source assets in, and the one they came from.
    sa.Column("asset_id", sa.String(160), index=True),
    sa.Column("other_asset_id", sa.String(160), index=True),
    sa.Column("before", Json, nullable=False),
    sa.Column("after", Json, nullable=False),
)

# The persisted crosswalk: a person's decision that this source asset is that canonical asset.
# It is applied before the resolver and the crosswalk file, and keeps a split member apart.
identity_pins = sa.Table(
    "identity_pins",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("source_asset_id", sa.String(200), primary_key=True),
    sa.Column("asset_id", sa.String(160), sa.ForeignKey("assets.asset_id"), nullable=False),
    sa.Column("audit_id", sa.BigInteger, nullable=False),
    sa.Index("ix_identity_pins_asset_id", "asset_id"),
)

# Assets removed by a merge, so their old links still answer (a 308 to the asset they joined).
identity_redirects = sa.Table(
    "identity_redirects",
    metadata,
    sa.Column("asset_id", sa.String(160), primary_key=True),
    sa.Column("target_asset_id", sa.String(160), sa.ForeignKey("assets.asset_id"), nullable=False),
    sa.Column("audit_id", sa.BigInteger, nullable=False),
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

# The consensus reference price of each canonical asset, as a time series: one row per asset per
# as-of time (its newest constituent observation). The primary key serves the history reads.
reference_prices = sa.Table(
    "reference_prices",
    metadata,
    sa.Column("asset_id", sa.String(160), sa.ForeignKey("assets.asset_id"), primary_key=True),
    sa.Column("as_of", UTCDateTime, primary_key=True),
    # ok (a price) or disputed (no price: see the constituents' reasons).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("price_usd", sa.Double),
    sa.Column("dispersion_bps", sa.Double),
    sa.Column("sources_used", sa.Integer, nullable=False),
    sa.Column("sources_total", sa.Integer, nullable=False),
    sa.Column("single_source", sa.Boolean, nullable=False),
    # Every constituent: source, price, volume, observed_at, weight or reason and detail.
    sa.Column("constituents", Json, nullable=False),
    sa.Column("computed_at", UTCDateTime, nullable=False),
)
