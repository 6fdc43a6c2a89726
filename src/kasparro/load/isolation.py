"""A batch the database refuses in part: find the records it refuses, quarantine them, load the
rest.

Everything is checked before it reaches the database (lengths, characters, dates), so this is the
last line, for what no check foresaw (a constraint, a driver's own limit). The batch is tried
whole in a savepoint; if the database refuses it, each half is tried in its own, down to single
records, which go to quarantine as `database_rejected` with the database's reason. A batch of n
records with k refused costs about k * log2(n) extra attempts, and nothing when none is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.db.schema import raw_payloads
from kasparro.identity.crosswalk import Crosswalk
from kasparro.load.loader import BatchOutcome, load_batch
from kasparro.load.quarantine import store_quarantine
from kasparro.logging import get_logger
from kasparro.models import Observation, RawRecord, Rejection, canonical_json

log = get_logger(__name__)

Item = Observation | Rejection


def refused_by_database(exc: BaseException) -> bool:
    """A statement the database (or the driver, before sending it) refused for its data, as
    opposed to a lost connection or a locked database, which no record is to blame for."""
    if isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError):
        return True
    # A value a driver or a column type could not bind (psycopg refuses NUL in text itself).
    return isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError)


def load_isolating(
    conn: Connection,
    *,
    source: str,
    records: Sequence[Observation],
    rejections: Sequence[Rejection],
    crosswalk: Crosswalk,
    run_id: str,
    now: datetime,
    midpoint: Callable[[], None] = lambda: None,
) -> tuple[BatchOutcome, int]:
    """Load a batch as `load_batch` does; returns its outcome and how many of its records the
    database refused (those are quarantined, and counted as quarantined)."""

    def attempt(items: Sequence[Item]) -> tuple[BatchOutcome, int]:
        observations = [i for i in items if isinstance(i, Observation)]
        refused = [i for i in items if isinstance(i, Rejection)]
        try:
            with conn.begin_nested():
                outcome = load_batch(
                    conn,
                    source=source,
                    records=observations,
                    rejections=refused,
                    crosswalk=crosswalk,
                    run_id=run_id,
                    now=now,
                    midpoint=midpoint,
                )
            return outcome, 0
        except sa.exc.SQLAlchemyError as exc:
            if not refused_by_database(exc):
                raise
            if len(items) > 1:
                half = len(items) // 2
                first, second = attempt(items[:half]), attempt(items[half:])
                return _add(first[0], second[0]), first[1] + second[1]
            return _quarantine_refused(conn, source, items[0], exc, run_id, now), 1

    return attempt([*rejections, *records])


def _quarantine_refused(
    conn: Connection,
    source: str,
    item: Item,
    exc: sa.exc.SQLAlchemyError,
    run_id: str,
    now: datetime,
) -> BatchOutcome:
    reason = f"the database refused it: {_reason(exc)}"
    log.warning("record_refused_by_database", raw_id=_raw_id(item), reason=reason)
    if isinstance(item, Rejection):
        # Even its quarantine row was refused: keep the reason with an empty payload.
        rejection = replace(
            item,
            raw=RawRecord(source, {}, item.raw.raw_id, b"{}"),
            reason=f"{item.reason}; {reason}",
            code="database_rejected",
        )
    else:
        body = conn.scalar(
            sa.select(raw_payloads.c.payload).where(raw_payloads.c.raw_id == item.raw_id)
        )
        payload = body if isinstance(body, dict) else {"raw_id": item.raw_id}
        rejection = Rejection(
            raw=RawRecord(source, payload, item.raw_id, canonical_json(payload)),
            reason=reason,
            source_asset_id=item.source_asset_id,
            code="database_rejected",
        )
    with conn.begin_nested():
        store_quarantine(conn, source, [rejection], run_id, now)
    return BatchOutcome(
        processed=1, loaded=0, unchanged=0, quarantined=1, new_assets=0, linked=0, reviews=0
    )


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's first line, without the statement and parameters SQLAlchemy appends."""
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {str(original).splitlines()[0] if str(original) else ''}"


def _raw_id(item: Item) -> str:
    return item.raw.raw_id if isinstance(item, Rejection) else item.raw_id


def _add(a: BatchOutcome, b: BatchOutcome) -> BatchOutcome:
    return BatchOutcome(
        processed=a.processed + b.processed,
        loaded=a.loaded + b.loaded,
        unchanged=a.unchanged + b.unchanged,
        quarantined=a.quarantined + b.quarantined,
        new_assets=a.new_assets + b.new_assets,
        linked=a.linked + b.linked,
        reviews=a.reviews + b.reviews,
        revised=a.revised + b.revised,
    )
