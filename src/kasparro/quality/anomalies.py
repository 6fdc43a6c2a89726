"""Anomalies: a finished run unlike its source's recent runs, a price unlike the other sources'.

Run checks compare with the median of the source's last successful runs, so one odd run does
not move the baseline much; an incremental source (a file read from its checkpoint) that finds
nothing new is not a drop. Price checks compare a source's latest price of a canonical asset
with the median of the prices other sources observed close to it in time (a month-old price is
not a disagreement); it takes at least two such other sources to blame one (with one other,
nobody can say which is right).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.db.schema import asset_sources, etl_runs

BASELINE_RUNS = 5
MIN_DURATION_MS = 1000  # below a second, a 3x "spike" is noise


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str
    source: str
    detail: str
    value: float | None = None
    baseline: float | None = None
    asset_id: str | None = None

    def row(self, run_id: str, now: datetime) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "source": self.source,
            "kind": self.kind,
            "asset_id": self.asset_id,
            "detail": self.detail,
            "value": self.value,
            "baseline": self.baseline,
            "created_at": now,
        }


@dataclass(frozen=True, slots=True)
class RunFigures:
    records_processed: int
    records_quarantined: int
    duration_ms: int
    # Observations the run stored or corrected: none, while records arrive, means the source
    # sent what it sent before. None: not known.
    records_moved: int | None = None


def compare_run(
    source: str,
    run: RunFigures,
    history: Sequence[RunFigures],
    *,
    count_drop: float,
    duration_factor: float,
    incremental: bool = False,
) -> list[Anomaly]:
    """Pure: this run against the median of earlier ones."""
    if not history or (incremental and run.records_processed == 0):
        return []
    found = []
    if not incremental and _unmoved(run) and _unmoved(history[0]):
        found.append(
            Anomaly(
                "stale_source",
                source,
                f"{run.records_processed} records, none newer than those of the run before, two "
                "runs in a row: the source is sending the same observations",
                0,
                run.records_processed,
            )
        )
    count = statistics.median(h.records_processed for h in history)
    if count > 0 and run.records_processed < (1 - count_drop) * count:
        found.append(
            Anomaly(
                "record_count_drop",
                source,
                f"{run.records_processed} records, against a median of {count:g} "
                f"over the last {len(history)} runs",
                run.records_processed,
                count,
            )
        )
    duration = statistics.median(h.duration_ms for h in history)
    if run.duration_ms >= MIN_DURATION_MS and run.duration_ms > duration_factor * max(duration, 1):
        found.append(
            Anomaly(
                "duration_spike",
                source,
                f"took {run.duration_ms} ms, against a median of {duration:g} ms",
                run.duration_ms,
                duration,
            )
        )
    share = statistics.median(_quarantine_share(h) for h in history)
    now_share = _quarantine_share(run)
    if now_share > max(2 * share, share + 0.05):
        found.append(
            Anomaly(
                "error_spike",
                source,
                f"{now_share:.1%} of records quarantined, against a median of {share:.1%}",
                now_share,
                share,
            )
        )
    return found


class Quote(NamedTuple):
    price: float
    observed_at: datetime


def price_outliers(
    prices: dict[str, dict[str, Quote]],
    source: str,
    deviation: float,
    freshness: timedelta,
) -> list[Anomaly]:
    """Pure: asset -> {source: quote}; flags `source` where it strays from the median of at
    least two other sources observed within `freshness` of it."""
    found = []
    for asset_id, by_source in sorted(prices.items()):
        mine = by_source.get(source)
        if mine is None:
            continue
        fresh = [
            q.price
            for s, q in by_source.items()
            if s != source and abs(q.observed_at - mine.observed_at) <= freshness
        ]
        if len(fresh) < 2:
            continue
        median = statistics.median([mine.price, *fresh])
        if median > 0 and abs(mine.price - median) / median > deviation:
            found.append(
                Anomaly(
                    "price_outlier",
                    source,
                    f"{asset_id}: {source} says {mine.price:g}, "
                    f"{abs(mine.price - median) / median:.0%} from the median {median:g} of "
                    f"{len(fresh) + 1} sources observed within {freshness}",
                    mine.price,
                    median,
                    asset_id,
                )
            )
    return found


def run_history(conn: Connection, source: str, run_id: str) -> list[RunFigures]:
    rows = conn.execute(
        sa.select(
            etl_runs.c.records_processed,
            etl_runs.c.records_quarantined,
            etl_runs.c.duration_ms,
            etl_runs.c.records_loaded,
            etl_runs.c.records_revised,
        )
        .where(
            etl_runs.c.source == source,
            etl_runs.c.status == "success",
            etl_runs.c.trigger != "replay",  # a replay's size is the quarantine's, not a run's
            etl_runs.c.run_id != run_id,
            etl_runs.c.records_processed > 0,
        )
        .order_by(etl_runs.c.started_at.desc())
        .limit(BASELINE_RUNS)
    )
    return [
        RunFigures(
            r.records_processed,
            r.records_quarantined,
            r.duration_ms or 0,
            r.records_loaded + r.records_revised,
        )
        for r in rows
    ]


def touched_prices(conn: Connection, run_id: str, source: str) -> dict[str, dict[str, Quote]]:
    """Latest price per source of every canonical asset whose `source` member this run moved,
    for the assets that have another source to compare with (only those can disagree)."""
    mine, other, any_other = (asset_sources.alias(n) for n in ("mine", "other", "any_other"))
    rows = conn.execute(
        sa.select(other.c.asset_id, other.c.source, other.c.price_usd, other.c.observed_at)
        .join(mine, mine.c.asset_id == other.c.asset_id)
        .where(
            mine.c.source == source,
            mine.c.run_id == run_id,
            sa.exists().where(
                any_other.c.asset_id == mine.c.asset_id, any_other.c.source != mine.c.source
            ),
        )
    )
    prices: dict[str, dict[str, Quote]] = defaultdict(dict)
    for asset_id, member_source, price, observed_at in rows:
        prices[asset_id][member_source] = Quote(price, observed_at)
    return prices


def _unmoved(run: RunFigures) -> bool:
    return run.records_moved == 0 and run.records_processed > run.records_quarantined


def _quarantine_share(run: RunFigures) -> float:
    return run.records_quarantined / run.records_processed if run.records_processed else 0.0
