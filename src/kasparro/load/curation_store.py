"""Identity corrections in the database: moving source assets between canonical assets with
everything keyed by them, pins, redirects, and the pins the loader honours.

Everything runs inside the caller's (serialized) write transaction: a correction is applied
whole or not at all, and no batch of the ETL interleaves with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.consensus import store as consensus_store
from kasparro.db.schema import (
    anomalies,
    asset_sources,
    assets,
    identity_pins,
    identity_redirects,
    identity_reviews,
    price_history,
)
from kasparro.identity.crosswalk import Crosswalk
from kasparro.identity.model import Decision, SourceAsset
from kasparro.identity.resolver import lookup_for, resolve
from kasparro.load.identity_store import fetch_candidates
from kasparro.load.sql import id_chunks, in_list, insert_for

Key = tuple[str, str]


# Moving rows ----------------------------------------------------------------------------------


def repoint_asset(conn: Connection, from_asset: str, to_asset: str) -> dict[str, int]:
    """Re-point every row keyed by `from_asset` to `to_asset` (a merge): members, history,
    anomalies, reviews. Returns how many rows moved per table.

    Tables added later that hold an asset_id must be re-pointed here too (and in `move_member`
    for one source asset): that is the one seam a merge or split goes through. Reference prices
    are the consensus's own (it keeps `into`'s where both have one); a split leaves the past
    ones where they are: they were computed from the members of their time.
    """
    moved = {
        "asset_sources": _update(
            conn, asset_sources, asset_sources.c.asset_id == from_asset, to_asset
        ),
        "price_history": _update(
            conn, price_history, price_history.c.asset_id == from_asset, to_asset
        ),
        "anomalies": _update(conn, anomalies, anomalies.c.asset_id == from_asset, to_asset),
    }
    _update(conn, identity_reviews, identity_reviews.c.asset_id == from_asset, to_asset)
    moved["reference_prices"] = consensus_store.repoint(conn, from_asset, to_asset)
    return moved


def move_member(conn: Connection, key: Key, from_asset: str, to_asset: str) -> dict[str, int]:
    """Move one source asset, with its history and its anomalies, to another canonical asset."""
    source, source_asset_id = key
    member = sa.and_(
        asset_sources.c.source == source, asset_sources.c.source_asset_id == source_asset_id
    )
    history = sa.and_(
        price_history.c.source == source,
        price_history.c.source_asset_id == source_asset_id,
        price_history.c.asset_id == from_asset,
    )
    anomaly = sa.and_(anomalies.c.asset_id == from_asset, anomalies.c.source == source)
    review = sa.and_(
        identity_reviews.c.source == source, identity_reviews.c.source_asset_id == source_asset_id
    )
    moved = {
        "asset_sources": _update(conn, asset_sources, member, to_asset),
        "price_history": _update(conn, price_history, history, to_asset),
        "anomalies": _update(conn, anomalies, anomaly, to_asset),
    }
    _update(conn, identity_reviews, review, to_asset)
    return moved


def _update(conn: Connection, table: sa.Table, where: Any, to_asset: str) -> int:
    return int(conn.execute(sa.update(table).where(where).values(asset_id=to_asset)).rowcount)


def remove_asset(conn: Connection, asset_id: str, target: str, audit_id: int) -> None:
    """Remove an asset left without members; its id redirects to `target` from now on (and so
    does every id that redirected to it)."""
    conn.execute(
        sa.update(identity_redirects)
        .where(identity_redirects.c.target_asset_id == asset_id)
        .values(target_asset_id=target)
    )
    conn.execute(sa.delete(identity_redirects).where(identity_redirects.c.asset_id == asset_id))
    conn.execute(
        sa.insert(identity_redirects).values(
            asset_id=asset_id, target_asset_id=target, audit_id=audit_id
        )
    )
    conn.execute(sa.delete(assets).where(assets.c.asset_id == asset_id))


def redirect_of(conn: Connection, asset_id: str) -> str | None:
    """Where a removed asset's id leads now, or None."""
    target: str | None = conn.scalar(
        sa.select(identity_redirects.c.target_asset_id).where(
            identity_redirects.c.asset_id == asset_id
        )
    )
    return target


# Reading assets -------------------------------------------------------------------------------


def asset_head(conn: Connection, asset_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(assets.c.asset_id, assets.c.symbol, assets.c.name).where(
            assets.c.asset_id == asset_id
        )
    ).first()
    return row._asdict() if row is not None else None


def members_of(conn: Connection, asset_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(
            asset_sources.c.source,
            asset_sources.c.source_asset_id,
            asset_sources.c.symbol,
            asset_sources.c.name,
            asset_sources.c.match_method,
            asset_sources.c.match_score,
        )
        .where(asset_sources.c.asset_id == asset_id)
        .order_by(asset_sources.c.source, asset_sources.c.source_asset_id)
    )
    return [row._asdict() for row in rows]


def member_row(conn: Connection, key: Key) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(
            asset_sources.c.asset_id,
            asset_sources.c.source,
            asset_sources.c.source_asset_id,
            asset_sources.c.symbol,
            asset_sources.c.name,
        ).where(asset_sources.c.source == key[0], asset_sources.c.source_asset_id == key[1])
    ).first()
    return row._asdict() if row is not None else None


def history_count(conn: Connection, asset_id: str) -> int:
    return int(
        conn.scalar(
            sa.select(sa.func.count())
            .select_from(price_history)
            .where(price_history.c.asset_id == asset_id)
        )
        or 0
    )


def snapshot(conn: Connection, asset_ids: Sequence[str]) -> dict[str, Any]:
    """The assets as an audit row records them: name, members (with their pins), history rows."""
    described: dict[str, Any] = {}
    for asset_id in dict.fromkeys(asset_ids):
        head = asset_head(conn, asset_id)
        if head is None:
            continue
        pins = dict(
            conn.execute(
                sa.select(
                    identity_pins.c.source + ":" + identity_pins.c.source_asset_id,
                    identity_pins.c.audit_id,
                ).where(identity_pins.c.asset_id == asset_id)
            ).all()
        )
        described[asset_id] = {
            "symbol": head["symbol"],
            "name": head["name"],
            "members": [
                {
                    "member": f"{m['source']}:{m['source_asset_id']}",
                    "match_method": m["match_method"],
                    "match_score": m["match_score"],
                }
                for m in members_of(conn, asset_id)
            ],
            "pins": pins,
            "history_rows": history_count(conn, asset_id),
        }
    return described


# Pins -----------------------------------------------------------------------------------------


def write_pin(conn: Connection, key: Key, asset_id: str, audit_id: int) -> None:
    stmt = insert_for(conn, identity_pins).values(
        source=key[0], source_asset_id=key[1], asset_id=asset_id, audit_id=audit_id
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[identity_pins.c.source, identity_pins.c.source_asset_id],
            set_={"asset_id": asset_id, "audit_id": audit_id},
        )
    )


def repoint_pins(conn: Connection, from_asset: str, to_asset: str) -> None:
    conn.execute(
        sa.update(identity_pins)
        .where(identity_pins.c.asset_id == from_asset)
        .values(asset_id=to_asset)
    )


def pinned_to(conn: Connection, asset_id: str) -> list[Key]:
    rows = conn.execute(
        sa.select(identity_pins.c.source, identity_pins.c.source_asset_id).where(
            identity_pins.c.asset_id == asset_id
        )
    )
    return [(source, source_asset_id) for source, source_asset_id in rows]


# The loader -----------------------------------------------------------------------------------


def decide_with_pins(
    conn: Connection,
    source: str,
    views: Sequence[SourceAsset],
    crosswalk: Crosswalk,
    run_id: str,
) -> list[Decision]:
    """Where each never-seen source asset goes: a person's pin first, then the resolver (with
    the crosswalk file) for the rest.

    An asset pinned for a source asset of this source not loaded yet is kept for it: the
    resolver never gives it another one. A pin that cannot be honoured (its asset holds another
    asset of this source by now) is not guessed around: the source asset becomes an asset of
    its own with a review saying why.
    """
    pins = _pins_for(conn, source, [v.source_asset_id for v in views])
    decisions: list[Decision] = []
    rest: list[SourceAsset] = []
    for view in views:
        pin = pins.get(view.source_asset_id)
        if pin is None:
            rest.append(view)
            continue
        asset_id, audit_id, holder = pin
        if holder is None:
            decisions.append(Decision(view, asset_id, "pin", 1.0))
        else:
            reason = (
                f"pinned to {asset_id} (identity audit {audit_id}), which holds "
                f"{source}:{holder} by now; split that out or pin again"
            )
            pinned = ({"asset_id": asset_id, "score": 1.0, "pin": audit_id},)
            decisions.append(Decision(view, None, "ambiguous", 0.0, reason, pinned))
    if not rest:
        return decisions
    kept = _kept_for_pins(conn, source) | {d.asset_id for d in decisions if d.asset_id}
    candidates = [
        c
        for c in fetch_candidates(conn, lookup_for(rest, crosswalk), source, run_id)
        if c.asset_id not in kept
    ]
    return decisions + resolve(rest, candidates, crosswalk)


def _pins_for(
    conn: Connection, source: str, source_asset_ids: Sequence[str]
) -> dict[str, tuple[str, int, str | None]]:
    """Pins of these source assets: (asset, audit id, the member of `source` it holds if any)."""
    holder = asset_sources.alias("holder")
    found: dict[str, tuple[str, int, str | None]] = {}
    for part in id_chunks(conn, sorted(set(source_asset_ids))):
        rows = conn.execute(
            sa.select(
                identity_pins.c.source_asset_id,
                identity_pins.c.asset_id,
                identity_pins.c.audit_id,
                holder.c.source_asset_id,
            )
            .join(
                holder,
                sa.and_(holder.c.asset_id == identity_pins.c.asset_id, holder.c.source == source),
                isouter=True,
            )
            .where(
                identity_pins.c.source == source,
                in_list(conn, identity_pins.c.source_asset_id, part),
            )
        )
        found.update({said: (asset_id, audit, held) for said, asset_id, audit, held in rows})
    return found


def _kept_for_pins(conn: Connection, source: str) -> set[str]:
    """Assets pinned for a source asset of `source` that is not loaded yet."""
    loaded = sa.exists().where(
        asset_sources.c.source == identity_pins.c.source,
        asset_sources.c.source_asset_id == identity_pins.c.source_asset_id,
    )
    return set(
        conn.scalars(
            sa.select(identity_pins.c.asset_id).where(identity_pins.c.source == source, ~loaded)
        )
    )
