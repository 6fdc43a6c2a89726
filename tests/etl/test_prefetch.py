"""The prefetcher that runs fetching and parsing a batch ahead of the database writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import structlog

from kasparro.etl.prefetch import Prefetcher


def test_items_arrive_in_order_and_an_error_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("page 3 is not JSON")

    got: list[int] = []

    def consume() -> None:
        with Prefetcher(items()) as prefetched:
            got.extend(prefetched)

    with pytest.raises(ValueError, match="page 3"):
        consume()
    assert got == [1, 2]


def test_it_runs_at_most_depth_items_ahead() -> None:
    produced: list[int] = []
    second_taken = threading.Event()

    def items() -> Iterator[int]:
        for n in range(10):
            produced.append(n)
            yield n

    with Prefetcher(items(), depth=1) as prefetched:
        iterator = iter(prefetched)
        assert next(iterator) == 0
        second_taken.wait(0.3)  # give the thread time to run ahead as far as it may
        # 0 consumed, 1 queued, 2 made and waiting for room: never further.
        assert len(produced) <= 3


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def items() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    with Prefetcher(items(), depth=2) as prefetched:
        for item in prefetched:
            if item == 3:
                break
    assert closed.is_set()
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_the_thread_logs_with_the_callers_context() -> None:
    seen: list[object] = []

    def items() -> Iterator[int]:
        seen.append(structlog.contextvars.get_contextvars().get("run_id"))
        yield 1

    with structlog.contextvars.bound_contextvars(run_id="run-1"), Prefetcher(items()) as p:
        assert list(p) == [1]
    assert seen == ["run-1"]


def test_closing_does_not_wait_for_a_producer_stuck_in_a_long_call() -> None:
    release = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        release.wait(10)  # a retry back-off, say
        yield 2

    started = time.monotonic()
    with Prefetcher(items(), stop_timeout=0.2) as prefetched:
        assert next(iter(prefetched)) == 1
    assert time.monotonic() - started < 2
    release.set()
