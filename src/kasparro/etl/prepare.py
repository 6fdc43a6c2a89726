"""The pure work on a fetched batch, done ahead of the writer in the fetch process: drift
detection, normalization, and packing what the writer needs as plain data."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from kasparro.config import Settings
from kasparro.logging import configure_logging
from kasparro.models import Observation, Rejection, UnifiedRecord
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
    bodies: dict[str, bytes]  # raw_id -> canonical JSON of each valid record's payload


def prepare(source: Source, batch: Batch, settings: Settings) -> PreparedBatch:
    """Detect drift, then normalize what the payloads mean once confident renames are undone
    (the raw payload is stored as received)."""
    drift = detect(
        source.name, [raw.payload for raw in batch.records], settings.drift_rename_confidence
    )
    normalized = [
        source.normalize(replace(raw, payload=drift.apply(raw.payload))) for raw in batch.records
    ]
    return PreparedBatch(
        cursor=batch.cursor,
        label=batch.label,
        drift=drift,
        records=[n.observation() for n in normalized if isinstance(n, UnifiedRecord)],
        rejections=[*batch.rejections, *(n for n in normalized if isinstance(n, Rejection))],
        bodies={raw.raw_id: raw.body for raw in batch.records},
    )


def fetch_prepared(settings: Settings, name: str, cursor: Cursor | None) -> Iterator[PreparedBatch]:
    """Every batch of source `name` from `cursor` on, prepared: what the fetch process runs."""
    configure_logging(settings.log_level, settings.log_format)
    source = build_source(settings, name)
    try:
        for batch in source.fetch(cursor):
            yield prepare(source, batch, settings)
    finally:
        source.close()
