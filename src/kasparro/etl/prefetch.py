"""Run an iterator in a process of its own, about one item ahead of its consumer.

The ETL fetches, parses, normalizes (and stores the raw payloads of) batch N+1 while batch N is
written. In a thread that work would share the GIL with the writer, which then waits for it
after every database round trip; in a process it runs on a core of its own. Items cross a pipe
by pickle, so they should be plain data.

The child is forked from multiprocessing's fork server (a clean process that has the producer's
module imported already), not from this process, which has threads. It exits as soon as this
process closes the prefetcher or dies (SIGKILL included): it watches a pipe that only this
process holds open.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import threading
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from types import TracebackType
from typing import Any, Generic, TypeVar

import structlog

T = TypeVar("T")

_ITEM, _END, _ERROR = "item", "end", "error"


def _context(preload: str) -> ForkServerContext | SpawnContext:
    """The fork server where there is one (Unix); spawn, slower to start, everywhere else."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Only has an effect before the fork server starts: the first user's module wins.
    context.set_forkserver_preload([preload])
    return context


def start_fork_server(preload: str) -> None:
    """Start the fork server now, in the background, with `preload` imported, so that the first
    Prefetcher need not wait for it (about a second). A process calls this when it starts."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        _context(preload)
        multiprocessing.forkserver.ensure_running()


class ProducerDied(RuntimeError):
    """The producing process ended without saying how (killed, or out of memory)."""


class Prefetcher(Generic[T]):
    """Iterates `produce(*args)` in a child process, ahead of the consumer by what the pipe
    holds (64 KiB: one item, for items as large as a batch) plus the item being made. Errors
    reach the consumer in order, after the items before them, as the exception the producer
    raised (or the nearest base class that survives pickling), with the child's traceback as a
    note.

    `produce` must be importable by name (a module-level function); the child logs with the
    caller's structlog context. Use as a context manager: leaving it ends the child.
    """

    def __init__(
        self, produce: Callable[..., Iterator[T]], *args: Any, name: str = "prefetch"
    ) -> None:
        context = _context(preload=produce.__module__)
        self._items, child_items = context.Pipe(duplex=False)
        child_lifeline, self._lifeline = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_run,
            args=(produce, args, structlog.contextvars.get_contextvars(), child_items),
            kwargs={"lifeline": child_lifeline},
            name=name,
            daemon=True,
        )
        self._process.start()
        # Only the child holds these ends now, so each side sees the other's end as EOF.
        child_items.close()
        child_lifeline.close()

    @property
    def pid(self) -> int | None:
        pid: int | None = self._process.pid
        return pid

    def __iter__(self) -> Iterator[T]:
        while True:
            try:
                kind, value = self._items.recv()
            except EOFError:
                self._process.join(5)
                raise ProducerDied(
                    f"the {self._process.name} process ended unexpectedly "
                    f"(exit code {self._process.exitcode})"
                ) from None
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def close(self) -> None:
        """End the child (at once, wherever it is) and reap it."""
        self._lifeline.close()
        self._items.close()
        self._process.join(5)
        if self._process.is_alive():  # pragma: no cover - it exits on the lifeline's EOF
            self._process.kill()
            self._process.join()
        self._process.close()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _run(
    produce: Callable[..., Iterator[Any]],
    args: tuple[Any, ...],
    log_context: dict[str, Any],
    items: Connection,
    *,
    lifeline: Connection,
) -> None:
    """The child: send every item, then the end or the error."""
    threading.Thread(target=_exit_with_parent, args=(lifeline,), daemon=True).start()
    structlog.contextvars.bind_contextvars(**log_context)
    try:
        for item in produce(*args):
            items.send((_ITEM, item))
        message: tuple[str, object] = (_END, None)
    except Exception as exc:
        message = (_ERROR, _portable(exc, traceback.format_exc()))
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        items.send(message)


def _exit_with_parent(lifeline: Connection) -> None:
    """Block until the parent closes its end of the lifeline or dies, then exit at once."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(0)


def _portable(exc: Exception, trace: str) -> Exception:
    """`exc` if it survives pickling, else the nearest base class built from its message (an
    exception whose __init__ takes more than a message does not), with the child's traceback."""
    for cls in type(exc).__mro__:
        if not issubclass(cls, Exception):
            continue
        try:
            candidate = exc if cls is type(exc) else cls(str(exc))
            # Our own exception, pickled and read back in this process: nothing untrusted.
            portable: Exception = pickle.loads(pickle.dumps(candidate))  # noqa: S301
        except Exception:  # noqa: S112 - try the next base class
            continue
        portable.add_note(f"In the prefetch process:\n{trace}")
        return portable
    raise AssertionError("unreachable: Exception itself always pickles")  # pragma: no cover
