"""Replay: quarantined records normalized again from their stored payloads, once their cause is
fixed (a crosswalk row, a drift mapping, a parser fix, a wider FUTURE_TOLERANCE_SECONDS).

A replay is a run of its source: recorded in etl_runs with trigger `replay`, holding the
source's lease, finished like any run. Its quarantine rows are read by id in batches of
ETL_BATCH_SIZE; each batch is prepared as a fetched batch is (drift, the source's own
`normalize`, the time checks) and committed in one write transaction, in which the records that
now validate leave quarantine and are loaded by the real loader: none is lost or loaded twice.
A record that still fails stays where it is, its reason and reason_code brought up to date (its
run_id and created_at still say which run quarantined it, and when). The checkpoint is never
moved, and a replay with nothing fixed changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import Connection, Engine, Row

from kasparro.config import Settings
from kasparro.consensus.refresh import refresh_after_runs
from kasparro.db.engine import write_transaction
from kasparro.db.schema import quarantine, raw_payloads
from kasparro.etl.lease import Heartbeat, Lease, renew
from kasparro.etl.prepare import PreparedBatch, prepare
from kasparro.etl.run_record import (
    LeaseLost,
    RunResult,
    add_batch_to_run,
    conclude,
    count_records,
    record_drift,
    run_failure,
)
from kasparro.etl.runner import StartedRun, begin_runs, check_sources
from kasparro.identity.crosswalk import Crosswalk, load_crosswalk
from kasparro.load.isolation import load_isolating
from kasparro.load.quarantine import quarantine_row
from kasparro.logging import get_logger
from kasparro.models import RawRecord, Rejection, canonical_json, content_hash
from kasparro.sources.base import Batch, Source
from kasparro.sources.registry import build_source, source_names

log = get_logger(__name__)

TRIGGER = "replay"
# A CSV line that could not be split into fields holds no record: only a corrected file helps.
NOT_REPLAYABLE = ("malformed_line",)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which quarantined records to replay: every one of a source, or those of a run or code."""

    run_id: str | None = None
    reason_code: str | None = None

    def where(self, source: str | None = None) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = [quarantine.c.reason_code.not_in(NOT_REPLAYABLE)]
        if source is not None:
            where.append(quarantine.c.source == source)
        if self.run_id is not None:
            where.append(quarantine.c.run_id == self.run_id)
        if self.reason_code is not None:
            where.append(quarantine.c.reason_code == self.reason_code)
        return where


def sources_to_replay(engine: Engine, selection: Selection) -> list[str]:
    """The sources with quarantined records the selection takes, in the usual order."""
    with engine.connect() as conn:
        found = set(
            conn.scalars(sa.select(quarantine.c.source).where(*selection.where()).distinct())
        )
    return [name for name in source_names() if name in found]


def replay_source(
    engine: Engine, settings: Settings, source: str, selection: Selection = Selection()
) -> RunResult:
    """Replay one source's quarantined records now, in this thread; raises SourceBusy if a run
    of the source holds its lease."""
    (lease,) = begin_runs(engine, settings, check_sources([source]), TRIGGER)
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)
    with Heartbeat(engine, [lease], ttl):
        return _replay(engine, settings, lease, source, selection)


def start_replays(
    engine: Engine, settings: Settings, sources: Sequence[str], selection: Selection = Selection()
) -> list[StartedRun]:
    """Record and lease a replay of every source now (all or none), then run them in a
    background thread."""
    names = check_sources(sources)
    leases = begin_runs(engine, settings, names, TRIGGER)
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)

    def work() -> None:
        with Heartbeat(engine, leases, ttl) as heartbeat:
            for lease, name in zip(leases, names, strict=True):
                _replay(engine, settings, lease, name, selection)
                heartbeat.drop(lease)

    threading.Thread(target=work, name="etl-replay", daemon=True).start()
    return [StartedRun(lease.run_id, name) for lease, name in zip(leases, names, strict=True)]


def _replay(
    engine: Engine, settings: Settings, lease: Lease, name: str, selection: Selection
) -> RunResult:
    started = time.monotonic()
    status, error, detail, failure_point = "success", None, None, None
    totals: Counter[str] = Counter()
    with structlog.contextvars.bound_contextvars(run_id=lease.run_id, source=name):
        log.info("replay_started", of_run=selection.run_id, reason_code=selection.reason_code)
        label = "start"
        source: Source | None = None
        try:
            source = build_source(settings, name)
            crosswalk = load_crosswalk(settings.identity_crosswalk_path)
            # Rows this replay quarantines again (database_rejected) come after this id.
            with engine.connect() as conn:
                last = conn.scalar(sa.select(sa.func.max(quarantine.c.id))) or 0
            after = 0
            while rows := _read(engine, name, selection, after, last, settings.etl_batch_size):
                label = f"quarantine ids {rows[0].id}-{rows[-1].id}"
                after = rows[-1].id
                totals.update(_commit(engine, settings, lease, source, rows, crosswalk, label))
        except Exception as exc:
            status, failure_point = "failed", label
            error, detail = run_failure(exc, label, lease.run_id)
        finally:
            if source is not None:
                source.close()
        # A refused record stays quarantined, as database_rejected.
        result = conclude(
            engine,
            settings,
            lease,
            name,
            (status, error, detail, failure_point),
            started,
            totals,
            event="replay_finished",
        )
        # Records it loaded are latest values now: their assets' reference prices follow, as
        # after an ETL cycle (a failure there is logged; the next cycle catches up).
        refresh_after_runs(engine, settings, [lease.run_id])
        return result


def _read(
    engine: Engine, source: str, selection: Selection, after: int, last: int, limit: int
) -> list[Row[Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(quarantine)
                .where(*selection.where(source), quarantine.c.id > after, quarantine.c.id <= last)
                .order_by(quarantine.c.id)
                .limit(limit)
            )
        )


def _commit(
    engine: Engine,
    settings: Settings,
    lease: Lease,
    source: Source,
    rows: Sequence[Row[Any]],
    crosswalk: Crosswalk,
    label: str,
) -> Counter[str]:
    with engine.connect() as conn:
        raws = _raw_records(conn, source.name, rows)
    prepared = _prepare(source, list(raws.values()), settings, label)
    valid = {r.raw_id for r in prepared.records}
    failing = {r.raw.raw_id: r for r in prepared.rejections}
    ttl = timedelta(seconds=settings.etl_lock_lease_seconds)
    with write_transaction(engine) as conn:
        now = datetime.now(UTC)
        if not renew(conn, lease, ttl, now):  # fencing: a lost lease must not write
            raise LeaseLost(f"{source.name}: lease lost before committing {label}")
        # Out of quarantine in the transaction that loads them; a record the database still
        # refuses is quarantined again (as database_rejected) by the loader.
        conn.execute(
            sa.delete(quarantine).where(
                quarantine.c.id.in_([row.id for row in rows if row.raw_id in valid])
            )
        )
        outcome, refused = load_isolating(
            conn,
            source=source.name,
            records=prepared.records,
            rejections=[],
            crosswalk=crosswalk,
            run_id=lease.run_id,
            now=now,
        )
        _update_reasons(conn, rows, failing, lease.run_id, now)
        record_drift(conn, source.name, prepared.drift, lease.run_id, now)
        still = len(rows) - len(valid) + outcome.quarantined
        add_batch_to_run(conn, lease.run_id, replace(outcome, processed=len(rows)), still)
    # Records that stay quarantined were counted when they were quarantined first.
    count_records(source.name, outcome, quarantined=False)
    return Counter(
        processed=len(rows),
        loaded=outcome.loaded,
        unchanged=outcome.unchanged,
        revised=outcome.revised,
        quarantined=still,
        refused=refused,
    )


def _raw_records(conn: Connection, source: str, rows: Sequence[Row[Any]]) -> dict[int, RawRecord]:
    """Each row's record as the source delivered it, under its original raw_id.

    The quarantine payload is the record itself unless it was cut (over 64 KiB) or emptied (a
    row the database refused): then the raw payload stored at fetch is read instead. A row with
    neither is left out: it stays quarantined as it is.
    """
    whole = {row.id: row.payload for row in rows if _is_whole(source, row)}
    missing = [row.raw_id for row in rows if row.id not in whole]
    stored = {}
    if missing:
        stored = dict(
            conn.execute(
                sa.select(raw_payloads.c.raw_id, raw_payloads.c.payload).where(
                    raw_payloads.c.source == source, raw_payloads.c.raw_id.in_(missing)
                )
            ).tuples()
        )
    raws: dict[int, RawRecord] = {}
    for row in rows:
        payload = whole.get(row.id, stored.get(row.raw_id))
        if payload is None and isinstance(row.payload, dict) and not row.payload.get("truncated"):
            payload = row.payload  # escaped on the way in: the best there is
        if isinstance(payload, dict) and payload:
            raws[row.id] = RawRecord(source, payload, row.raw_id, canonical_json(payload))
    return raws


def _is_whole(source: str, row: Row[Any]) -> bool:
    payload = row.payload
    return isinstance(payload, dict) and (
        content_hash(source, canonical_json(payload)) == row.raw_id
    )


def _prepare(
    source: Source, raws: list[RawRecord], settings: Settings, label: str
) -> PreparedBatch:
    """The batch prepared as a fetched one is; a payload the source cannot even read (it raises)
    is left out, and stays quarantined as it is."""
    batch = Batch(records=raws, cursor={}, label=label)
    try:
        return prepare(source, batch, settings)
    except Exception:  # a stored payload of another shape: find which
        readable = [raw for raw in raws if _readable(source, raw)]
        return prepare(source, Batch(records=readable, cursor={}, label=label), settings)


def _readable(source: Source, raw: RawRecord) -> bool:
    try:
        source.normalize(raw)
    except Exception:
        log.warning("replay_unreadable_payload", raw_id=raw.raw_id)
        return False
    return True


def _update_reasons(
    conn: Connection,
    rows: Sequence[Row[Any]],
    failing: dict[str, Rejection],
    run_id: str,
    now: datetime,
) -> None:
    """Bring the reason of each record that still fails up to date, where it changed.

    A future_timestamp's words name the clock of its check: with the same code the cause is
    the same, and its first words stay (so a replay with nothing fixed changes nothing)."""
    for row in rows:
        rejection = failing.get(row.raw_id)
        if rejection is None:
            continue
        stored = quarantine_row(row.source, rejection, run_id, now)
        if stored["reason_code"] != row.reason_code or (
            stored["reason"] != row.reason and row.reason_code != "future_timestamp"
        ):
            conn.execute(
                sa.update(quarantine)
                .where(quarantine.c.id == row.id)
                .values(reason=stored["reason"], reason_code=stored["reason_code"])
            )
