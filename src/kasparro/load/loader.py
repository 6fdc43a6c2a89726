"""Load one batch: raw payloads, quarantine, identity, latest values, history and the checkpoint.

Everything here runs inside the caller's transaction; nothing is cached past it, so a rollback
leaves no state behind in memory either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.db.engine import write_transaction
from kasparro.db.schema import (
    asset_sources,
    assets,
    etl_checkpoints,
    identity_reviews,
    price_history,
    raw_payloads,
)
from kasparro.identity.crosswalk import Crosswalk
from kasparro.identity.evidence import blocking_keys
from kasparro.identity.model import Decision, SourceAsset
from kasparro.identity.resolver import asset_id_base
from kasparro.load.corrections import Stored, apply_corrections, stored_history
from kasparro.load.curation_store import decide_with_pins
from kasparro.load.identity_store import allocate_asset_ids
from kasparro.load.quarantine import store_quarantine
from kasparro.load.quotes import convert_quotes
from kasparro.load.sql import (
    id_chunks,
    in_list,
    insert_for,
    insert_ignore,
    insert_new,
    insert_rows,
)
from kasparro.models import Observation, RawRecord, Rejection


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    processed: int
    loaded: int  # history rows written
    unchanged: int  # observations already stored
    quarantined: int
    new_assets: int
    linked: int  # source assets seen for the first time
    reviews: int
    revised: int = 0  # stored observations whose values a source corrected


def load_batch(
    conn: Connection,
    *,
    source: str,
    records: Sequence[Observation],
    rejections: Sequence[Rejection],
    crosswalk: Crosswalk,
    run_id: str,
    now: datetime,
    midpoint: Callable[[], None] = lambda: None,
) -> BatchOutcome:
    """Write one normalized batch (the caller owns the transaction and writes the checkpoint).
    Its raw payloads are stored already (`store_raw`, by the fetch process).

    `midpoint` runs halfway through the writes: a fault point for recovery drills.
    """
    processed = len(records) + len(rejections)
    # Exchange pairs quoted in USDT, EUR, BTC...: to USD, or to quarantine (load/quotes.py).
    records, unpriced = convert_quotes(conn, source, records)
    rejections = [*rejections, *unpriced]
    # One record per observation; a later one in the batch corrects an earlier one.
    unique = list({(r.source_asset_id, r.observed_at): r for r in records}.values())
    unchanged = len(records) - len(unique)
    latest = _latest_observations(conn, source, [r.source_asset_id for r in unique])
    fresh: list[Observation] = []  # observations not stored yet
    again: list[Observation] = []  # observations stored already, with other values or older
    for r in unique:
        known = latest.get(r.source_asset_id)
        if known is None or r.observed_at > known.observed_at:
            fresh.append(r)
        elif r.observed_at == known.observed_at and not known.values.differs(r):
            unchanged += 1  # the common case, decided without reading history
        else:
            again.append(r)
    stored = stored_history(conn, source, [(r.source_asset_id, r.observed_at) for r in again])
    corrections: list[tuple[Observation, Stored, bool]] = []
    for r in again:
        key = (r.source_asset_id, r.observed_at)
        known = latest[r.source_asset_id]
        old = stored.get(key) or (known.values if r.observed_at == known.observed_at else None)
        if old is None:
            fresh.append(r)  # an older observation never stored: history gains it
        elif old.differs(r):
            corrections.append((r, old, key in stored))
        else:
            unchanged += 1

    asset_of = {said: known.asset_id for said, known in latest.items()}
    linked, new_assets, reviews = _link_new_source_assets(
        conn, source, fresh, latest, crosswalk=crosswalk, run_id=run_id, now=now
    )
    asset_of.update(linked)
    quarantined = store_quarantine(conn, source, rejections, run_id, now)
    loaded = _store_history(conn, fresh, asset_of, set(linked), run_id, now)
    midpoint()
    # Source assets linked by this batch were inserted with their newest values already.
    _upsert_latest(conn, [r for r in fresh if r.source_asset_id in latest], run_id, now)
    apply_corrections(conn, source, corrections, run_id, now)
    return BatchOutcome(
        processed=processed,
        loaded=loaded,
        unchanged=unchanged,
        quarantined=quarantined,
        new_assets=new_assets,
        linked=len(linked),
        reviews=reviews,
        revised=len(corrections),
    )


def save_checkpoint(
    conn: Connection, source: str, cursor: Mapping[str, Any], run_id: str, now: datetime
) -> None:
    stmt = insert_for(conn, etl_checkpoints).values(
        source=source, cursor=dict(cursor), run_id=run_id, updated_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[etl_checkpoints.c.source],
            set_={"cursor": stmt.excluded.cursor, "run_id": run_id, "updated_at": now},
        )
    )


def read_checkpoint(conn: Connection, source: str) -> dict[str, Any] | None:
    cursor = conn.scalar(
        sa.select(etl_checkpoints.c.cursor).where(etl_checkpoints.c.source == source)
    )
    return dict(cursor) if cursor is not None else None


class Latest(NamedTuple):
    """A known source asset: its canonical asset and its latest observation."""

    asset_id: str
    observed_at: datetime
    values: Stored


def _latest_observations(
    conn: Connection, source: str, source_asset_ids: Sequence[str]
) -> dict[str, Latest]:
    latest: dict[str, Latest] = {}
    columns = [asset_sources.c[c] for c in Stored._fields]
    for part in id_chunks(conn, sorted(set(source_asset_ids))):
        rows = conn.execute(
            sa.select(
                asset_sources.c.source_asset_id,
                asset_sources.c.asset_id,
                asset_sources.c.observed_at,
                *columns,
            ).where(
                asset_sources.c.source == source,
                in_list(conn, asset_sources.c.source_asset_id, part),
            )
        )
        latest.update(
            {
                said: Latest(asset_id, observed_at, Stored(*values))
                for said, asset_id, observed_at, *values in rows
            }
        )
    return latest


def _link_new_source_assets(
    conn: Connection,
    source: str,
    fresh: Sequence[Observation],
    latest: Mapping[str, object],
    *,
    crosswalk: Crosswalk,
    run_id: str,
    now: datetime,
) -> tuple[dict[str, str], int, int]:
    """Resolve never-seen source assets to canonical assets, creating those that are new.

    Returns the canonical asset of each source asset linked, and how many assets and identity
    reviews were created."""
    newest: dict[str, Observation] = {}
    for record in fresh:
        if record.source_asset_id in latest:
            continue
        seen = newest.get(record.source_asset_id)
        if seen is None or record.observed_at > seen.observed_at:
            newest[record.source_asset_id] = record
    if not newest:
        return {}, 0, 0
    views = [
        SourceAsset(
            source=source,
            source_asset_id=r.source_asset_id,
            symbol=r.symbol,
            name=r.name,
            price_usd=r.price_usd,
            market_cap_usd=r.market_cap_usd,
            observed_at=r.observed_at,
        )
        for r in newest.values()
    ]
    # A person's pins decide first; the resolver and the crosswalk file decide the rest.
    decisions = decide_with_pins(conn, source, views, crosswalk, run_id)
    creations = [d for d in decisions if d.asset_id is None]
    new_ids = allocate_asset_ids(
        conn, [asset_id_base(d.record.symbol, d.record.name) for d in creations]
    )
    insert_rows(
        conn,
        assets,
        [
            {
                "asset_id": asset_id,
                "symbol": d.record.symbol,
                "name": d.record.name,
                "created_at": now,
                "created_run_id": run_id,
            }
            for d, asset_id in zip(creations, new_ids, strict=True)
        ],
    )
    assigned = dict(zip((id(d) for d in creations), new_ids, strict=True))
    links = [
        _link_row(d, d.asset_id or assigned[id(d)], newest[d.record.source_asset_id], run_id, now)
        for d in decisions
    ]
    insert_rows(conn, asset_sources, links)
    linked = {link["source_asset_id"]: link["asset_id"] for link in links}
    reviews = [
        {
            "source": source,
            "source_asset_id": d.record.source_asset_id,
            "asset_id": assigned[id(d)],
            "reason": d.reason or "ambiguous match",
            "candidates": list(d.candidates),
            "run_id": run_id,
            "created_at": now,
        }
        for d in creations
        if d.method == "ambiguous"
    ]
    insert_ignore(conn, identity_reviews, reviews)
    return linked, len(creations), len(reviews)


def _link_row(
    decision: Decision, asset_id: str, record: Observation, run_id: str, now: datetime
) -> dict[str, Any]:
    row = _latest_values(record, run_id, now)
    row["asset_id"] = asset_id
    row["match_method"] = decision.method
    row["match_score"] = decision.score
    row.update(blocking_keys(decision.record))  # what later candidates are found by
    return row


def _latest_values(record: Observation, run_id: str, now: datetime) -> dict[str, Any]:
    return {
        "source": record.source,
        "source_asset_id": record.source_asset_id,
        "symbol": record.symbol,
        "name": record.name,
        "price_usd": record.price_usd,
        "market_cap_usd": record.market_cap_usd,
        "volume_24h_usd": record.volume_24h_usd,
        "observed_at": record.observed_at,
        "ingested_at": now,
        "run_id": run_id,
        "raw_id": record.raw_id,
    }


def _upsert_latest(
    conn: Connection, fresh: Sequence[Observation], run_id: str, now: datetime
) -> None:
    """Move each source asset's latest values forward; an older observation never overwrites."""
    newest: dict[str, Observation] = {}
    for record in fresh:
        seen = newest.get(record.source_asset_id)
        if seen is None or record.observed_at > seen.observed_at:
            newest[record.source_asset_id] = record
    if not newest:
        return
    values = (
        "symbol",
        "name",
        "price_usd",
        "market_cap_usd",
        "volume_24h_usd",
        "observed_at",
        "ingested_at",
        "run_id",
        "raw_id",
    )

    def newer_only(stmt: Any) -> Any:
        return stmt.on_conflict_do_update(
            index_elements=[asset_sources.c.source, asset_sources.c.source_asset_id],
            set_={name: stmt.excluded[name] for name in values},
            where=stmt.excluded.observed_at > asset_sources.c.observed_at,
        )

    # Every row conflicts (these source assets exist): the link columns are never written.
    rows = [
        {**_latest_values(r, run_id, now), "asset_id": "", "match_method": "", "match_score": 0.0}
        for r in newest.values()
    ]
    insert_rows(conn, asset_sources, rows, on_conflict=newer_only)


def _store_history(
    conn: Connection,
    fresh: Sequence[Observation],
    asset_of: Mapping[str, str],
    linked_now: set[str],
    run_id: str,
    now: datetime,
) -> int:
    """One history row per fresh observation; returns how many were new.

    A source asset linked in this very transaction has no history yet, so its rows go in without
    a conflict check; the others' may repeat an observation already stored (a vendor's clock
    going back), which is ignored.
    """
    rows: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for r in fresh:
        rows[r.source_asset_id in linked_now].append(
            {
                "source": r.source,
                "source_asset_id": r.source_asset_id,
                "observed_at": r.observed_at,
                "asset_id": asset_of[r.source_asset_id],
                "price_usd": r.price_usd,
                "market_cap_usd": r.market_cap_usd,
                "volume_24h_usd": r.volume_24h_usd,
                "ingested_at": now,
                "run_id": run_id,
                "raw_id": r.raw_id,
            }
        )
    return insert_rows(conn, price_history, rows[True]) + insert_ignore(
        conn, price_history, rows[False]
    )


def store_raw(engine: Engine, source: str, raws: Sequence[RawRecord], run_id: str) -> int:
    """Store each payload once, as its canonical JSON, in a transaction of its own; returns how
    many were new. The fetch process does this before it hands the batch to the writer, so a
    committed batch's payloads are always stored (a crash may leave payloads of a batch that
    was not loaded: harmless, and the rerun stores nothing new for them).

    Not serialized with the other writers, and race-free all the same: a raw_id hashes its
    source, one run per source holds the lease at a time, and raw payloads are never changed
    or deleted.
    """
    now = datetime.now(UTC)
    rows = [
        {
            "raw_id": r.raw_id,
            "source": source,
            "payload": r.body,
            "run_id": run_id,
            "fetched_at": now,
        }
        for r in {r.raw_id: r for r in raws}.values()
    ]
    with write_transaction(engine, serialized=False) as conn:
        return insert_new(conn, raw_payloads, rows, key="raw_id")
