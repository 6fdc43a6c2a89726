"""planner statistics for the application role: an ANALYZE it may start

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A large first load re-analyzes the identity tables as it goes (kasparro/db/planner_stats.py),
but before PostgreSQL 17 only a table's owner may ANALYZE it: run as the application role
(docs/operations.md, "Database roles"), the ANALYZE was skipped with a warning and the planner
kept the statistics of an empty table. This function runs it as its owner, the schema's, on
those columns only (SECURITY DEFINER with a fixed search_path, no argument). EXECUTE stays
granted to PUBLIC: only Kasparro's two roles may connect, and analyzing is harmless.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# The columns a load looks rows up by (planner_stats.COLUMNS when this was written).
ANALYZED = {
    "assets": ("asset_id", "symbol"),
    "asset_sources": (
        *("source", "source_asset_id", "asset_id", "symbol"),
        *("ticker_key", "name_key", "id_key"),
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    tables = ", ".join(
        f'"{schema}"."{table}" ({", ".join(columns)})' for table, columns in ANALYZED.items()
    )
    op.execute(
        f"""
        CREATE FUNCTION kasparro_analyze_identity() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            ANALYZE (SKIP_LOCKED) {tables};
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS kasparro_analyze_identity()")
