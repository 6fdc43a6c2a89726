"""Reference prices in the database: computed from the sources' latest values and recent
history, written as a time series (`reference_prices`), read back, and re-pointed on a merge."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from kasparro.consensus.inputs import Latest, latest_quotes, recent_prices, repeated_latest
from kasparro.consensus.method import Parameters, Quote, Reference, reference_price
from kasparro.db.engine import write_transaction
from kasparro.db.schema import asset_sources, reference_prices
from kasparro.load.sql import id_chunks, in_list, insert_rows
from kasparro.logging import get_logger

log = get_logger(__name__)

# Assets computed and written per transaction.
CHUNK = 2_000
# What a recomputation at the same as-of time may change (computed_at alone is no change).
_CONTENT = (
    "status",
    "price_usd",
    "dispersion_bps",
    "sources_used",
    "sources_total",
    "single_source",
    "constituents",
)


@dataclass(frozen=True, slots=True)
class ComputeSummary:
    assets: int  # assets with at least one source price
    written: int  # rows inserted or changed (a recomputation over unchanged data writes none)
    statuses: dict[str, int] = field(default_factory=dict)
    single_source: int = 0
    seconds: float = 0.0


def compute(
    engine: Engine,
    params: Parameters,
    *,
    asset_ids: Sequence[str] | None = None,
    now: datetime | None = None,
) -> ComputeSummary:
    """Compute and store the reference price of every asset with a source price (or of
    `asset_ids`), as of each asset's newest observation. Idempotent per (asset_id, as_of): the
    same data gives the same row, and a row is rewritten only when its content changed."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        quotes = latest_quotes(conn, asset_ids)
        # Only a source that repeated its latest price can be frozen: history is read for the
        # assets that have one, not for every asset.
        suspects = repeated_latest(conn, asset_ids, params.frozen_lookback)
    ids = sorted(quotes)
    written, statuses, single = 0, Counter[str](), 0
    for start in range(0, len(ids), CHUNK):
        part = {a: quotes[a] for a in ids[start : start + CHUNK]}
        with engine.connect() as conn:
            references = compute_for(conn, part, suspects, params, now)
        rows = [_row(asset_id, ref, now) for asset_id, ref in references.items()]
        with write_transaction(engine, serialized=False) as conn:
            written += write(conn, rows)
        statuses.update(ref.status.value for ref in references.values())
        single += sum(1 for ref in references.values() if ref.single_source)
    summary = ComputeSummary(
        assets=len(ids),
        written=written,
        statuses=dict(sorted(statuses.items())),
        single_source=single,
        seconds=time.perf_counter() - started,
    )
    log.info(
        "consensus_computed",
        assets=summary.assets,
        written=summary.written,
        statuses=summary.statuses,
        seconds=round(summary.seconds, 3),
    )
    return summary


def compute_for(
    conn: Connection,
    quotes: dict[str, list[Latest]],
    suspects: set[str],
    params: Parameters,
    now: datetime,
) -> dict[str, Reference]:
    """The reference price of each asset of `quotes` (nothing is written); the recent history
    of the `suspects` among them is read for the frozen test."""
    as_of = {a: min(now, max(q.observed_at for q in qs)) for a, qs in quotes.items()}
    recent = recent_prices(
        conn, {a: when for a, when in as_of.items() if a in suspects}, params.frozen_lookback
    )
    return {
        asset_id: reference_price(
            [
                Quote(
                    source=q.source,
                    source_asset_id=q.source_asset_id,
                    price_usd=q.price_usd,
                    volume_usd=q.volume_24h_usd,
                    observed_at=q.observed_at,
                    recent=recent.get((asset_id, q.source, q.source_asset_id), ()),
                )
                for q in latest
            ],
            params,
            now,
        )
        for asset_id, latest in quotes.items()
    }


def write(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert reference rows; returns how many were inserted or changed."""

    def upsert(stmt: Any) -> Any:
        changed = sa.or_(
            *(reference_prices.c[name].is_distinct_from(stmt.excluded[name]) for name in _CONTENT)
        )
        return stmt.on_conflict_do_update(
            index_elements=[reference_prices.c.asset_id, reference_prices.c.as_of],
            set_={name: stmt.excluded[name] for name in (*_CONTENT, "computed_at")},
            where=changed,
        )

    return insert_rows(conn, reference_prices, rows, on_conflict=upsert)


def latest_reference_price(
    conn: Connection, asset_id: str, at: datetime, max_age: timedelta
) -> float | None:
    """The asset's reference price as of `at`: the newest row at or before `at`, if it is at
    most `max_age` old and has a price (a disputed newest row means no price, not an older
    one). For converting quotes in another asset (USDT, EUR, BTC) to USD: never assume 1.0."""
    row = conn.execute(
        sa.select(reference_prices.c.as_of, reference_prices.c.price_usd)
        .where(reference_prices.c.asset_id == asset_id, reference_prices.c.as_of <= at)
        .order_by(reference_prices.c.as_of.desc())
        .limit(1)
    ).first()
    if row is None or row.price_usd is None or at - row.as_of > max_age:
        return None
    return float(row.price_usd)


def repoint(conn: Connection, from_asset: str, to_asset: str) -> int:
    """Move `from_asset`'s reference series to `to_asset` (a merge): where both have a row at
    the same as-of time, `to_asset`'s stays. Returns the rows moved. Run it in the merge's
    transaction, before `from_asset` is deleted."""
    theirs = sa.select(reference_prices.c.as_of).where(reference_prices.c.asset_id == to_asset)
    conn.execute(
        sa.delete(reference_prices).where(
            reference_prices.c.asset_id == from_asset, reference_prices.c.as_of.in_(theirs)
        )
    )
    moved = conn.execute(
        sa.update(reference_prices)
        .where(reference_prices.c.asset_id == from_asset)
        .values(asset_id=to_asset)
    )
    return int(moved.rowcount)


def priced_assets(conn: Connection, asset_ids: Sequence[str] | None) -> list[str]:
    """The assets with at least one source price (among `asset_ids`, or all), sorted."""
    stmt = sa.select(asset_sources.c.asset_id).distinct().order_by(asset_sources.c.asset_id)
    if asset_ids is None:
        return list(conn.scalars(stmt))
    found: list[str] = []
    for part in id_chunks(conn, sorted(set(asset_ids))):
        found.extend(conn.scalars(stmt.where(in_list(conn, asset_sources.c.asset_id, part))))
    return sorted(found)


def _row(asset_id: str, ref: Reference, now: datetime) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "as_of": ref.as_of,
        "status": ref.status.value,
        "price_usd": ref.price_usd,
        "dispersion_bps": ref.dispersion_bps,
        "sources_used": ref.sources_used,
        "sources_total": ref.sources_total,
        "single_source": ref.single_source,
        # Serialized here, once, by orjson (the column takes JSON text as it is).
        "constituents": orjson.dumps(
            [
                {
                    "source": c.source,
                    "source_asset_id": c.source_asset_id,
                    "price_usd": c.price_usd,
                    "volume_24h_usd": c.volume_usd,
                    "observed_at": c.observed_at.isoformat(),
                    "weight": c.weight,
                    "reason": c.reason.value if c.reason is not None else None,
                    "detail": c.detail,
                }
                for c in ref.constituents
            ]
        ),
        "computed_at": now,
    }
