"""Identity corrections by a person: merge two assets, split a source asset out, pin a source
asset to an asset, accept or reject a review. The same functions serve the CLI and the API.

Each runs in the caller's write transaction (`write_transaction`): it is checked first, then
applied whole (members, history, anomalies and reviews re-pointed) with one audit row saying
who, when, why, and the assets before and after. A refusal raises before anything is written;
any failure part-way rolls the whole transaction back. Every source asset a person moves is
pinned, so the ETL never undoes the correction, and automatic resolution never moves anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.config import Settings
from kasparro.db.schema import (
    asset_sources,
    assets,
    identity_audit,
    identity_pins,
    identity_reviews,
)
from kasparro.identity.curation_rules import (
    REVIEW_STATUSES,
    Conflict,
    CurationError,
    Key,
    NotFound,
    Outcome,
    Who,
    check_actor,
    check_reason,
    parse_member,
)
from kasparro.identity.resolver import asset_id_base
from kasparro.load import curation_store as store
from kasparro.load.identity_store import allocate_asset_ids
from kasparro.logging import get_logger

log = get_logger(__name__)
__all__ = [
    "REVIEW_STATUSES",
    "Conflict",
    "CurationError",
    "NotFound",
    "Outcome",
    "Who",
    "accept_review",
    "check_actor",
    "check_reason",
    "merge",
    "parse_member",
    "pin",
    "refresh_consensus",
    "reject_review",
    "split",
]


def merge(conn: Connection, into: str, other: str, who: Who) -> Outcome:
    """Every member of `other` joins `into`, with its history; `other` is removed and its id
    redirects to `into`."""
    if into == other:
        raise CurationError(f"cannot merge {into} into itself")
    _existing(conn, into)
    _existing(conn, other)
    _no_shared_source(conn, into, other)
    before = store.snapshot(conn, [into, other])
    audit_id = _audit(conn, "merge", who, into, other, before)
    keys = [(m["source"], m["source_asset_id"]) for m in store.members_of(conn, other)]
    moved = store.repoint_asset(conn, other, into)
    store.repoint_pins(conn, other, into)
    for key in keys:
        store.write_pin(conn, key, into, audit_id)
    _settle_reviews(conn, keys, into, who, audit_id)
    store.remove_asset(conn, other, into, audit_id)
    return _finish(conn, audit_id, "merge", into, before, [into], moved, removed=other)


def split(conn: Connection, asset_id: str, key: Key, who: Who, *, to: str | None = None) -> Outcome:
    """One member leaves `asset_id`, with its history, for a new asset (or `to`); pinned there,
    so it stays apart."""
    _existing(conn, asset_id)
    member = store.member_row(conn, key)
    if member is None or member["asset_id"] != asset_id:
        where = f"it is a member of {member['asset_id']}" if member else "it is not loaded"
        raise NotFound(f"{_name(key)} is not a member of {asset_id}: {where}")
    if to is None and len(store.members_of(conn, asset_id)) == 1:
        raise Conflict(f"{_name(key)} is the only member of {asset_id}: nothing to split from")
    if to is not None:
        if to == asset_id:
            raise CurationError(f"{_name(key)} is in {asset_id} already")
        _existing(conn, to)
        _free_for(conn, to, key)
    before = store.snapshot(conn, [asset_id, *([to] if to else [])])
    audit_id = _audit(conn, "split", who, to, asset_id, before)
    if to is None:
        to = _new_asset(conn, member, audit_id, who.at)
        _set_audit_asset(conn, audit_id, to)
    return _move(conn, "split", audit_id, key, asset_id, to, who, before)


def pin(conn: Connection, key: Key, asset_id: str, who: Who) -> Outcome:
    """`key` is `asset_id`: moved there now if it is loaded, linked there when it first loads."""
    _existing(conn, asset_id)
    member = store.member_row(conn, key)
    current = member["asset_id"] if member else None
    if current != asset_id:
        _free_for(conn, asset_id, key)
    before = store.snapshot(conn, [asset_id, *([current] if current else [])])
    audit_id = _audit(conn, "pin", who, asset_id, current, before)
    if current is None or current == asset_id:
        store.write_pin(conn, key, asset_id, audit_id)
        return _finish(conn, audit_id, "pin", asset_id, before, [asset_id], {})
    return _move(conn, "pin", audit_id, key, current, asset_id, who, before)


def accept_review(conn: Connection, key: Key, who: Who, *, asset_id: str | None = None) -> Outcome:
    """The reviewed source asset is the candidate (the best one, or `asset_id`): it moves there
    with its history, as a pin would move it; its former asset is removed if left empty."""
    review = _open_review(conn, key)
    target = asset_id or _best_candidate(review)
    if target is None:
        raise CurationError(f"the review of {_name(key)} names no candidate: give the asset")
    if asset_id is None:  # the suggested asset may have been merged since
        target = _follow_redirects(conn, target)
    outcome = _review_move(conn, key, target, who, "accept")
    _decide(conn, key, "accepted", target, who, outcome.audit_id)
    return outcome


def reject_review(conn: Connection, key: Key, who: Who) -> Outcome:
    """The reviewed source asset stays where it is, pinned there, so it is kept apart."""
    _open_review(conn, key)
    member = store.member_row(conn, key)
    if member is None:
        raise NotFound(f"{_name(key)} is not loaded (any more)")
    current = member["asset_id"]
    before = store.snapshot(conn, [current])
    audit_id = _audit(conn, "reject", who, current, None, before)
    store.write_pin(conn, key, current, audit_id)
    _decide(conn, key, "rejected", current, who, audit_id)
    return _finish(conn, audit_id, "reject", current, before, [current], {})


# The steps ------------------------------------------------------------------------------------


def _review_move(conn: Connection, key: Key, target: str, who: Who, action: str) -> Outcome:
    _existing(conn, target)
    member = store.member_row(conn, key)
    if member is None:
        raise NotFound(f"{_name(key)} is not loaded (any more)")
    current = member["asset_id"]
    if current != target:
        _free_for(conn, target, key)
    before = store.snapshot(conn, [current, target])
    audit_id = _audit(conn, action, who, target, current, before)
    if current == target:
        store.write_pin(conn, key, target, audit_id)
        return _finish(conn, audit_id, action, target, before, [target], {})
    return _move(conn, action, audit_id, key, current, target, who, before)


def _move(
    conn: Connection,
    action: str,
    audit_id: int,
    key: Key,
    from_asset: str,
    to_asset: str,
    who: Who,
    before: dict[str, Any],
) -> Outcome:
    moved = store.move_member(conn, key, from_asset, to_asset)
    store.write_pin(conn, key, to_asset, audit_id)
    _settle_reviews(conn, [key], to_asset, who, audit_id)
    removed = None
    if not store.members_of(conn, from_asset):
        store.repoint_asset(conn, from_asset, to_asset)  # what is left: its reviews
        store.repoint_pins(conn, from_asset, to_asset)
        store.remove_asset(conn, from_asset, to_asset, audit_id)
        removed = from_asset
    return _finish(
        conn, audit_id, action, to_asset, before, [from_asset, to_asset], moved, removed=removed
    )


def _finish(
    conn: Connection,
    audit_id: int,
    action: str,
    asset_id: str,
    before: dict[str, Any],
    asset_ids: list[str],
    moved: dict[str, int],
    *,
    removed: str | None = None,
) -> Outcome:
    after: dict[str, Any] = {"assets": store.snapshot(conn, asset_ids), "rows_moved": moved}
    if removed is not None:
        after["removed"] = {removed: f"redirects to {asset_id}"}
    conn.execute(
        sa.update(identity_audit).where(identity_audit.c.id == audit_id).values(after=after)
    )
    touched = tuple(a for a in dict.fromkeys(asset_ids) if a != removed) if moved else ()
    return Outcome(audit_id, action, asset_id, {"assets": before}, after, touched)


def _audit(
    conn: Connection,
    action: str,
    who: Who,
    asset_id: str | None,
    other_asset_id: str | None,
    before: dict[str, Any],
) -> int:
    """The audit row, written first: pins and redirects name it (`after` is filled at the end)."""
    inserted = conn.execute(
        sa.insert(identity_audit)
        .values(
            action=action,
            actor=who.actor,
            reason=who.reason,
            at=who.at,
            asset_id=asset_id,
            other_asset_id=other_asset_id,
            before={"assets": before},
            after={},
        )
        .returning(identity_audit.c.id)
    )
    return int(inserted.scalar_one())


def _set_audit_asset(conn: Connection, audit_id: int, asset_id: str) -> None:
    conn.execute(
        sa.update(identity_audit).where(identity_audit.c.id == audit_id).values(asset_id=asset_id)
    )


def _new_asset(conn: Connection, member: dict[str, Any], audit_id: int, now: datetime) -> str:
    base = asset_id_base(member["symbol"], member["name"])
    (asset_id,) = allocate_asset_ids(conn, [base])
    suffix = 1
    while store.redirect_of(conn, asset_id) is not None:  # an old link must not change coin
        suffix += 1
        (asset_id,) = allocate_asset_ids(conn, [f"{base}-{suffix}"])
    conn.execute(
        sa.insert(assets).values(
            asset_id=asset_id,
            symbol=member["symbol"],
            name=member["name"],
            created_at=now,
            created_run_id=f"identity-audit-{audit_id}",
        )
    )
    return asset_id


def _existing(conn: Connection, asset_id: str) -> None:
    if store.asset_head(conn, asset_id) is not None:
        return
    target = store.redirect_of(conn, asset_id)
    if target is not None:
        raise NotFound(f"no asset {asset_id}: it was merged into {target}; use {target}")
    raise NotFound(f"no asset {asset_id}")


def _follow_redirects(conn: Connection, asset_id: str) -> str:
    return store.redirect_of(conn, asset_id) or asset_id


def _no_shared_source(conn: Connection, into: str, other: str) -> None:
    """A canonical asset holds at most one asset per source, counting the ones pinned to it
    that are not loaded yet."""

    def held(asset_id: str) -> dict[str, set[str]]:
        keys: dict[str, set[str]] = {}
        for m in store.members_of(conn, asset_id):
            keys.setdefault(m["source"], set()).add(m["source_asset_id"])
        for source, source_asset_id in store.pinned_to(conn, asset_id):
            keys.setdefault(source, set()).add(source_asset_id)
        return keys

    mine, theirs = held(into), held(other)
    both = [
        f"{source} ({into}: {', '.join(sorted(mine[source]))}, "
        f"{other}: {', '.join(sorted(theirs[source]))})"
        for source in sorted(mine.keys() & theirs.keys())
        if mine[source] != theirs[source]
    ]
    if both:
        raise Conflict(
            f"{into} and {other} both hold (or are pinned for) an asset of {'; '.join(both)}: "
            f"an asset holds one asset per source, so split one of them out first"
        )


def _free_for(conn: Connection, asset_id: str, key: Key) -> None:
    """`asset_id` may take `key`: it holds no other asset of that source, and no pin keeps it
    for one."""
    source = key[0]
    held = conn.scalar(
        sa.select(asset_sources.c.source_asset_id).where(
            asset_sources.c.asset_id == asset_id,
            asset_sources.c.source == source,
            asset_sources.c.source_asset_id != key[1],
        )
    )
    if held is not None:
        raise Conflict(
            f"{asset_id} already holds {source}:{held} (one asset per source): split that out first"
        )
    pinned = conn.scalar(
        sa.select(identity_pins.c.source_asset_id).where(
            identity_pins.c.asset_id == asset_id,
            identity_pins.c.source == source,
            identity_pins.c.source_asset_id != key[1],
        )
    )
    if pinned is not None:
        raise Conflict(
            f"{asset_id} is pinned for {source}:{pinned} already: pin that elsewhere first"
        )


def _open_review(conn: Connection, key: Key) -> dict[str, Any]:
    row = conn.execute(
        sa.select(identity_reviews).where(
            identity_reviews.c.source == key[0], identity_reviews.c.source_asset_id == key[1]
        )
    ).first()
    if row is None:
        raise NotFound(f"no identity review of {_name(key)}")
    if row.status != "open":
        raise Conflict(
            f"the review of {_name(key)} was {row.status} by {row.decided_by} at "
            f"{row.decided_at:%Y-%m-%d %H:%M:%S} UTC (identity audit {row.audit_id})"
        )
    return row._asdict()


def _best_candidate(review: dict[str, Any]) -> str | None:
    candidates = [
        c for c in review["candidates"] or [] if isinstance(c, dict) and c.get("asset_id")
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda c: float(c.get("score") or 0.0))
    return str(best["asset_id"])


def _decide(
    conn: Connection, key: Key, status: str, asset_id: str, who: Who, audit_id: int
) -> None:
    conn.execute(
        sa.update(identity_reviews)
        .where(identity_reviews.c.source == key[0], identity_reviews.c.source_asset_id == key[1])
        .values(
            status=status,
            decided_by=who.actor,
            decided_at=who.at,
            decided_asset_id=asset_id,
            audit_id=audit_id,
        )
    )


def _settle_reviews(
    conn: Connection, keys: list[Key], asset_id: str, who: Who, audit_id: int
) -> None:
    """An open review of a source asset a person just placed is settled by that: `curated`."""
    for key in keys:
        conn.execute(
            sa.update(identity_reviews)
            .where(
                identity_reviews.c.source == key[0],
                identity_reviews.c.source_asset_id == key[1],
                identity_reviews.c.status == "open",
            )
            .values(
                status="curated",
                decided_by=who.actor,
                decided_at=who.at,
                decided_asset_id=asset_id,
                audit_id=audit_id,
            )
        )


def _name(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


def refresh_consensus(engine: Engine, settings: Settings, outcome: Outcome) -> None:
    """After the correction committed: the reference prices of the assets whose members changed
    are computed again. Never raises: a failure is logged, and the next run catches up."""
    if not outcome.touched:
        return
    from kasparro.consensus.refresh import compute_now

    try:
        compute_now(engine, settings, list(outcome.touched))
    except Exception as exc:
        log.error(
            "consensus_refresh_failed",
            audit_id=outcome.audit_id,
            error_type=type(exc).__name__,
            exc_info=exc,
        )
