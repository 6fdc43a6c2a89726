"""Each source's newest observation (its freshness), remembered until the ETL writes again.

Finding it reads every latest value of the source (no index orders them by time): half a second
at 600,000 source assets. Every write to the latest values is made by a run's batch, in the same
transaction that counts the batch into the run's row, so while each source's latest run has the
same id, status and batch count, the answer cannot have changed. It is read again then, and at
least every MAX_AGE_SECONDS whatever happened (a value edited by hand, a clock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from kasparro.api.queries.runs import SourceRuns
from kasparro.api.routes.health import newest_observation_by_source

MAX_AGE_SECONDS = 60.0


def _write_state(latest: dict[str, Any] | None) -> tuple[Any, ...]:
    if latest is None:
        return ()
    return (latest["run_id"], latest["status"], latest["batches_committed"])


class FreshnessCache:
    """One per application (the pages of every request share it)."""

    def __init__(self, max_age_seconds: float = MAX_AGE_SECONDS) -> None:
        self._max_age = max_age_seconds
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._read_at = 0.0
        self._newest: dict[str, datetime] = {}

    def newest(
        self, conn: Connection, names: Sequence[str], runs: Mapping[str, SourceRuns]
    ) -> dict[str, datetime]:
        key = tuple((name, _write_state(runs[name].latest)) for name in names)
        with self._lock:
            if key == self._key and time.monotonic() - self._read_at < self._max_age:
                return dict(self._newest)
        newest = newest_observation_by_source(conn, names)
        with self._lock:
            self._key, self._read_at, self._newest = key, time.monotonic(), newest
        return dict(newest)
