"""Corrections: a source sending other values for an observation it already sent.

An observation is a (source asset, `observed_at`). When it arrives again with other values, the
new values replace the served ones (history, and the latest value if it is the latest), and the
replaced values are kept in `price_history_revisions` with when and by which run they were
replaced. The same values again change nothing. See docs/corrections.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.db.schema import asset_sources, price_history, price_history_revisions
from kasparro.load.sql import chunks, id_chunks, in_list, insert_rows
from kasparro.models import Observation

Key = tuple[str, datetime]  # (source_asset_id, observed_at)
VALUES = ("price_usd", "market_cap_usd", "volume_24h_usd")


class Stored(NamedTuple):
    """An observation as stored: its values and where they came from."""

    price_usd: float
    market_cap_usd: float | None
    volume_24h_usd: float | None
    ingested_at: datetime
    run_id: str
    raw_id: str

    def differs(self, record: Observation) -> bool:
        return (self.price_usd, self.market_cap_usd, self.volume_24h_usd) != (
            record.price_usd,
            record.market_cap_usd,
            record.volume_24h_usd,
        )


def stored_history(conn: Connection, source: str, keys: Iterable[Key]) -> dict[Key, Stored]:
    """The stored history rows of these observations (those that exist)."""
    by_time: dict[datetime, set[str]] = {}
    for source_asset_id, observed_at in keys:
        by_time.setdefault(observed_at, set()).add(source_asset_id)
    found: dict[Key, Stored] = {}
    ids = sorted({said for saids in by_time.values() for said in saids})
    columns = [price_history.c[c] for c in (*VALUES, "ingested_at", "run_id", "raw_id")]
    for times in chunks(sorted(by_time), 500):
        for part in id_chunks(conn, ids):
            rows = conn.execute(
                sa.select(
                    price_history.c.source_asset_id, price_history.c.observed_at, *columns
                ).where(
                    price_history.c.source == source,
                    in_list(conn, price_history.c.source_asset_id, part),
                    price_history.c.observed_at.in_(times),
                )
            )
            for said, observed_at, *values in rows:
                if said in by_time.get(observed_at, ()):
                    found[(said, observed_at)] = Stored(*values)
    return found


def apply_corrections(
    conn: Connection,
    source: str,
    corrections: Sequence[tuple[Observation, Stored, bool]],
    run_id: str,
    now: datetime,
) -> None:
    """Replace each corrected observation's values, keeping the replaced ones as a revision.

    Each item: the new record, what it replaces, and whether a history row holds it (a history
    row pruned by retention leaves only the latest value to correct)."""
    if not corrections:
        return
    insert_rows(
        conn,
        price_history_revisions,
        [
            {
                "source": source,
                "source_asset_id": record.source_asset_id,
                "observed_at": record.observed_at,
                **old._asdict(),
                "revised_at": now,
                "revised_run_id": run_id,
            }
            for record, old, _ in corrections
        ],
    )
    new_values = [_values(record, run_id, now) for record, _, _ in corrections]
    in_history = [v for v, (_, _, stored) in zip(new_values, corrections, strict=True) if stored]
    if in_history:
        conn.execute(_update(price_history), in_history)
    # The latest value follows when the correction is for its observation.
    conn.execute(_update(asset_sources), new_values)


def _values(record: Observation, run_id: str, now: datetime) -> dict[str, Any]:
    return {
        "b_source": record.source,
        "b_source_asset_id": record.source_asset_id,
        "b_observed_at": record.observed_at,
        **{name: getattr(record, name) for name in VALUES},
        "ingested_at": now,
        "run_id": run_id,
        "raw_id": record.raw_id,
    }


def _update(table: sa.Table) -> Any:
    return sa.update(table).where(
        table.c.source == sa.bindparam("b_source"),
        table.c.source_asset_id == sa.bindparam("b_source_asset_id"),
        table.c.observed_at == sa.bindparam("b_observed_at", type_=table.c.observed_at.type),
    )  # SET: the parameters named after columns (price_usd, ...), per row


def latest_as_stored(row: Mapping[str, Any]) -> Stored:
    return Stored(*(row[c] for c in Stored._fields))
