"""Run an iterator in a background thread, a few items ahead of its consumer.

The ETL fetches and normalizes batch N+1 (HTTP and parsing) while batch N is being written (the
database works in its own process), so neither waits for the other.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"


class Prefetcher(Generic[T]):
    """Iterates `items` in a thread, at most `depth` items ahead; errors reach the consumer in
    order, after the items before them. Use as a context manager: leaving it stops the thread
    and closes `items` (its `finally` blocks run in the thread that ran it)."""

    def __init__(
        self,
        items: Iterator[T],
        *,
        depth: int = 1,
        name: str = "prefetch",
        stop_timeout: float = 5.0,
    ) -> None:
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stop_timeout = stop_timeout
        self._stop = threading.Event()
        # The thread logs with the caller's context (run_id, source).
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._produce, items), name=name, daemon=True
        )
        self._thread.start()

    def _produce(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put(_ITEM, item):
                    return
            self._put(_END, None)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_ERROR, exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, kind: str, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            kind, value = self._queue.get()
            if kind == _END:
                return
            if kind == _ERROR:
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]

    def close(self) -> None:
        """Stop the thread. It stops between items; one busy in a long call (an HTTP retry's
        back-off) is not waited for past `stop_timeout`: it exits when the call returns, and
        the caller closing the source's client ends such a call sooner."""
        self._stop.set()
        self._thread.join(self._stop_timeout)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
