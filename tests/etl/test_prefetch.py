"""The prefetcher that fetches and prepares batches in a process of its own, ahead of the writer.

Producers are module-level functions: the child process imports them by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from kasparro.etl.prefetch import Prefetcher, ProducerDied
from kasparro.sources.base import SourceError, UpstreamUnavailable
from kasparro.sources.http import RetryAfter

ROOT = Path(__file__).resolve().parents[2]


def two_then_fail() -> Iterator[int]:
    yield 1
    yield 2
    raise SourceError("page 3 is not JSON")


def test_items_arrive_in_order_and_the_error_after_them_as_raised() -> None:
    got: list[int] = []
    with pytest.raises(SourceError) as raised, Prefetcher[int](two_then_fail) as prefetched:
        got.extend(prefetched)
    assert got == [1, 2]
    assert type(raised.value) is SourceError
    assert str(raised.value) == "page 3 is not JSON"
    # Where it happened, for the crash log: the child's traceback.
    assert any("two_then_fail" in note for note in raised.value.__notes__)


def rate_limited() -> Iterator[int]:
    raise RetryAfter("429 from coinpaprika after 5 attempts", retry_after=30.0)
    yield 0  # pragma: no cover - makes this a generator


def test_an_error_that_does_not_pickle_arrives_as_its_nearest_base_class() -> None:
    # RetryAfter's __init__ wants two arguments, so pickle cannot rebuild it.
    with pytest.raises(UpstreamUnavailable) as raised, Prefetcher[int](rate_limited) as prefetched:
        list(prefetched)
    assert type(raised.value) is UpstreamUnavailable
    assert str(raised.value) == "429 from coinpaprika after 5 attempts"


def big_items(progress: Path) -> Iterator[bytes]:
    for n in range(20):
        progress.write_text(str(n))
        yield bytes(1 << 20)  # 1 MiB: much more than a pipe holds


def test_it_runs_about_one_batch_ahead(tmp_path: Path) -> None:
    progress = tmp_path / "progress"
    with Prefetcher[bytes](big_items, progress) as prefetched:
        assert len(next(iter(prefetched))) == 1 << 20
        time.sleep(0.5)  # time enough to run ahead as far as it may
        # 0 consumed, 1 being sent (blocked: the pipe is full), 2 made and waiting to be sent.
        assert int(progress.read_text()) <= 2


def forever(pid_file: Path) -> Iterator[int]:
    pid_file.write_text(str(os.getpid()))
    n = 0
    while True:
        yield n
        n += 1
        if n > 3:
            time.sleep(60)  # a retry back-off, say


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, not yet reaped by its new parent


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_leaving_early_ends_the_child_at_once_even_in_a_long_wait(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with Prefetcher[int](forever, pid_file) as prefetched:
        for item in prefetched:
            if item == 3:
                break
    assert time.monotonic() - started < 5
    assert _wait_gone(int(pid_file.read_text()))


def log_context() -> Iterator[dict[str, object]]:
    yield dict(structlog.contextvars.get_contextvars())


def test_the_child_logs_with_the_callers_context() -> None:
    with (
        structlog.contextvars.bound_contextvars(run_id="run-1", source="csv"),
        Prefetcher[dict[str, object]](log_context) as prefetched,
    ):
        assert list(prefetched) == [{"run_id": "run-1", "source": "csv"}]


def dies_silently() -> Iterator[int]:
    yield 1
    os._exit(3)  # killed, say, or out of memory


def test_a_child_that_dies_without_a_word_is_an_error_with_its_exit_code() -> None:
    got: list[int] = []
    with (
        pytest.raises(ProducerDied, match="exit code 3"),
        Prefetcher[int](dies_silently) as prefetched,
    ):
        got.extend(prefetched)
    assert got == [1]


def test_the_child_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import os, signal, time
        from pathlib import Path
        from kasparro.etl.prefetch import Prefetcher
        from tests.etl.test_prefetch import forever

        if __name__ == "__main__":
            prefetcher = Prefetcher(forever, Path({str(pid_file)!r}))
            items = iter(prefetcher)
            next(items)
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.run([sys.executable, "-c", script], cwd=ROOT, timeout=60, check=False)
    assert parent.returncode == -9
    assert _wait_gone(int(pid_file.read_text()))
