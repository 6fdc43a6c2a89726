"""coins without a ticker; blocking keys of the identity resolver

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

`assets.symbol` and `asset_sources.symbol` become nullable: a coin its vendor lists without a
ticker is loaded with symbol NULL and resolved by name and id. `asset_sources` gains the
resolver's indexed blocking keys (`ticker_key`, `name_key`, `id_key`), filled for the rows
already there. The downgrade gives a NULL symbol the empty string (the old schema's columns are
NOT NULL).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEYS = ("ticker_key", "name_key", "id_key")
_LENGTHS = {"ticker_key": 64, "name_key": 200, "id_key": 200}

# The table as this revision knows it (not the application's schema, which moves on).
_links = sa.table(
    "asset_sources",
    sa.column("source", sa.String),
    sa.column("source_asset_id", sa.String),
    sa.column("symbol", sa.String),
    sa.column("name", sa.Text),
    *(sa.column(key, sa.String) for key in KEYS),
)
_assets = sa.table("assets", sa.column("symbol", sa.String))
_BATCH = 2_000


def upgrade() -> None:
    _assets_symbol(nullable=True)
    with op.batch_alter_table("asset_sources") as batch:
        batch.alter_column("symbol", existing_type=sa.String(length=64), nullable=True)
        for key in KEYS:
            batch.add_column(sa.Column(key, sa.String(length=_LENGTHS[key]), nullable=True))
            batch.create_index(batch.f(f"ix_asset_sources_{key}"), [key], unique=False)
    _fill_keys(op.get_bind())


def downgrade() -> None:
    bind = op.get_bind()
    for table in (_links, _assets):
        bind.execute(sa.update(table).where(table.c.symbol.is_(None)).values(symbol=""))
    with op.batch_alter_table("asset_sources") as batch:
        for key in reversed(KEYS):
            batch.drop_index(batch.f(f"ix_asset_sources_{key}"))
            batch.drop_column(key)
        batch.alter_column("symbol", existing_type=sa.String(length=64), nullable=False)
    _assets_symbol(nullable=False)


def _assets_symbol(*, nullable: bool) -> None:
    """Make `assets.symbol` nullable or not.

    SQLite alters a column by rebuilding its table, and rebuilding `assets` means dropping it
    while other tables' rows point at it, which the enforced foreign keys refuse (and
    `PRAGMA foreign_keys` cannot change inside the migration's transaction). A NOT NULL
    constraint changes nothing stored, so SQLite's documented procedure for such changes is used
    instead: edit the table's CREATE statement in the schema and bump `schema_version`
    (https://www.sqlite.org/lang_altertable.html#otheralter). Before NOT NULL comes back, the
    downgrade has given every NULL a value.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.alter_column("assets", "symbol", existing_type=sa.String(length=64), nullable=nullable)
        return
    created = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'assets'"
    ).scalar_one()
    column = re.compile(r"(\bsymbol\s+VARCHAR\(64\))(\s+NOT NULL)?", re.IGNORECASE)
    altered = column.sub(r"\1" if nullable else r"\1 NOT NULL", created, count=1)
    if altered == created:
        return
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'assets'", (altered,)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def _fill_keys(bind: sa.engine.Connection) -> None:
    """The keys of every linked source asset, computed as the resolver computes them."""
    from kasparro.identity.evidence import blocking_keys
    from kasparro.identity.model import SourceAsset

    rows = bind.execute(
        sa.select(_links.c.source, _links.c.source_asset_id, _links.c.symbol, _links.c.name)
    ).all()
    update = (
        sa.update(_links)
        .where(
            _links.c.source == sa.bindparam("b_source"),
            _links.c.source_asset_id == sa.bindparam("b_id"),
        )
        .values({key: sa.bindparam(f"b_{key}") for key in KEYS})
    )
    for start in range(0, len(rows), _BATCH):
        values = []
        for source, source_asset_id, symbol, name in rows[start : start + _BATCH]:
            keys = blocking_keys(SourceAsset(source, source_asset_id, symbol or None, name))
            values.append(
                {"b_source": source, "b_id": source_asset_id}
                | {f"b_{key}": keys[key] for key in KEYS}
            )
        bind.execute(update, values)
