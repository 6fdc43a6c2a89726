"""What the fetch process does with each fetched batch, ahead of the writer: store its raw
payloads, detect drift, normalize, and pack what the writer needs as plain data."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kasparro.config import Settings
from kasparro.db.engine import create_db_engine
from kasparro.load.loader import store_raw
from kasparro.logging import configure_logging
from kasparro.models import Observation, RawRecord, Rejection, UnifiedRecord
from kasparro.quality.drift import DriftReport, detect
from kasparro.sources.base import Batch, Cursor, Source
from kasparro.sources.registry import build_source


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A fetched batch after the pure work: what the writer needs of it and no more."""

    cursor: Cursor
    label: str
    drift: DriftReport
    records: list[Observation]
    rejections: list[Rejection]

    def __reduce__(self) -> tuple[Any, ...]:
        # Records cross the pipe as plain tuples: pickling 2,000 named tuples costs a Python
        # call each, rebuilding them from tuples does not.
        records = [tuple(r) for r in self.records]
        return (_unpickle, (self.cursor, self.label, self.drift, records, self.rejections))


def _unpickle(
    cursor: Cursor,
    label: str,
    drift: DriftReport,
    records: list[tuple[Any, ...]],
    rejections: list[Rejection],
) -> PreparedBatch:
    return PreparedBatch(cursor, label, drift, list(map(Observation._make, records)), rejections)


def prepare(source: Source, batch: Batch, settings: Settings) -> PreparedBatch:
    """Detect drift, then normalize what the payloads mean once confident renames are undone
    (the raw payload is stored as received)."""
    drift = detect(
        source.name,
        [raw.payload for raw in batch.records],
        settings.drift_rename_confidence,
        schema=source.expected_shape,
    )
    raws = batch.records
    if drift.renames:
        raws = [replace(raw, payload=drift.apply(raw.payload)) for raw in raws]
    # Dated ahead of the clock (beyond the tolerance): an upstream clock error or a typo would
    # otherwise become the latest value for as long as the date stays ahead.
    horizon = datetime.now(UTC) + timedelta(seconds=settings.future_tolerance_seconds)
    normalized = [
        _in_time(original, source.normalize(raw), horizon)
        for original, raw in zip(batch.records, raws, strict=True)
    ]
    return PreparedBatch(
        cursor=batch.cursor,
        label=batch.label,
        drift=drift,
        records=[n.observation() for n in normalized if isinstance(n, UnifiedRecord)],
        rejections=[*batch.rejections, *(n for n in normalized if isinstance(n, Rejection))],
    )


def _in_time(
    raw: RawRecord, record: UnifiedRecord | Rejection, horizon: datetime
) -> UnifiedRecord | Rejection:
    if isinstance(record, Rejection) or record.observed_at <= horizon:
        return record
    return Rejection(
        raw=raw,
        reason=f"observed_at: {record.observed_at.isoformat()} is in the future "
        f"(later than {horizon.isoformat(timespec='seconds')})",
        source_asset_id=record.source_asset_id,
        code="future_timestamp",
    )


def fetch_prepared(
    settings: Settings, name: str, cursor: Cursor | None, run_id: str
) -> Iterator[PreparedBatch]:
    """Every batch of source `name` from `cursor` on, its raw payloads stored and the rest
    prepared: what the fetch process runs.

    Storing here, on a connection of its own, takes the largest write off the writer's path
    (on PostgreSQL the two run side by side); a thread stores a batch's payloads while the
    batch is prepared, and the batch goes to the writer only once they are committed.
    """
    configure_logging(settings.log_level, settings.log_format)
    source = build_source(settings, name)
    engine = create_db_engine(settings.resolved_database_url, pool_size=1, max_overflow=0)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="store-raw") as storing:
            for batch in source.fetch(cursor):
                raws = [*batch.records, *(q.raw for q in batch.rejections)]
                stored = storing.submit(store_raw, engine, name, raws, run_id)
                prepared = prepare(source, batch, settings)
                stored.result()
                yield prepared
    finally:
        source.close()
        engine.dispose()
