"""/identity: reviews, the audit trail and pins, as the API and the CLI list them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.api.queries.common import count_rows
from kasparro.db.schema import identity_audit, identity_pins, identity_reviews


def reviews_page(
    conn: Connection,
    *,
    status: str | None,
    source: str | None,
    limit: int,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Reviews, newest first; `status` None means every status."""
    where: list[sa.ColumnElement[bool]] = []
    if status is not None:
        where.append(identity_reviews.c.status == status)
    if source is not None:
        where.append(identity_reviews.c.source == source)
    rows = conn.execute(
        sa.select(identity_reviews)
        .where(*where)
        .order_by(
            identity_reviews.c.created_at.desc(),
            identity_reviews.c.source,
            identity_reviews.c.source_asset_id,
        )
        .limit(limit)
        .offset(offset)
    )
    return [_review(row._asdict()) for row in rows], count_rows(conn, identity_reviews, where)


def review(conn: Connection, source: str, source_asset_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(identity_reviews).where(
            identity_reviews.c.source == source,
            identity_reviews.c.source_asset_id == source_asset_id,
        )
    ).first()
    return _review(row._asdict()) if row is not None else None


def _review(row: dict[str, Any]) -> dict[str, Any]:
    row["kept_as"] = row.pop("asset_id")
    row["candidates"] = list(row["candidates"] or [])
    return row


def audit_page(
    conn: Connection,
    *,
    asset_id: str | None,
    action: str | None,
    limit: int,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Audit rows, newest first; `asset_id` matches the asset on either side of the action."""
    where: list[sa.ColumnElement[bool]] = []
    if asset_id is not None:
        where.append(
            sa.or_(
                identity_audit.c.asset_id == asset_id, identity_audit.c.other_asset_id == asset_id
            )
        )
    if action is not None:
        where.append(identity_audit.c.action == action)
    rows = conn.execute(
        sa.select(identity_audit)
        .where(*where)
        .order_by(identity_audit.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [row._asdict() for row in rows], count_rows(conn, identity_audit, where)


def audit_entry(conn: Connection, audit_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(identity_audit).where(identity_audit.c.id == audit_id)).first()
    return row._asdict() if row is not None else None


def pins_page(
    conn: Connection, *, asset_id: str | None, limit: int, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Pins with who made them and when, by source asset."""
    where: list[sa.ColumnElement[bool]] = []
    if asset_id is not None:
        where.append(identity_pins.c.asset_id == asset_id)
    rows = conn.execute(
        sa.select(
            identity_pins.c.source,
            identity_pins.c.source_asset_id,
            identity_pins.c.asset_id,
            identity_pins.c.audit_id,
            identity_audit.c.action,
            identity_audit.c.actor,
            identity_audit.c.at,
        )
        .join(identity_audit, identity_audit.c.id == identity_pins.c.audit_id, isouter=True)
        .where(*where)
        .order_by(identity_pins.c.source, identity_pins.c.source_asset_id)
        .limit(limit)
        .offset(offset)
    )
    return [row._asdict() for row in rows], count_rows(conn, identity_pins, where)
