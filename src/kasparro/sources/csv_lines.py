"""Reading a CSV file that may still be growing: lines with the byte offset of what was consumed,
records that a cut-off last line never completes, the delimiter, and hashes of a prefix."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, BinaryIO


class LineReader:
    """Feeds decoded lines to csv.reader and tracks the byte offset of what was consumed.

    Bytes that are not UTF-8 decode to lone surrogates, which validation refuses: the record is
    quarantined instead of loaded with replacement characters. A last line without its newline
    is read only when `read_unterminated`, and is never counted as consumed: the checkpoint
    stays before it, so a row still being written is read again, whole, later.
    """

    def __init__(self, handle: BinaryIO, start: int, *, read_unterminated: bool = True) -> None:
        self._handle = handle
        handle.seek(start)
        self.offset = start
        self.number = count_lines(handle, start)  # the header is line 1
        self.last_text = ""
        self.last_terminated = True
        # True once the end of the file (or of what may be read of it) has been reached.
        self.exhausted = False
        self._consumed: list[bytes] = []
        self.read_unterminated = read_unterminated

    def __iter__(self) -> LineReader:
        return self

    def __next__(self) -> str:
        line = self._handle.readline()
        if not line:
            self.exhausted = True
            raise StopIteration
        self.number += 1
        self.last_terminated = line.endswith(b"\n")
        if not self.last_terminated:
            if not self.read_unterminated:
                self.exhausted = True
                raise StopIteration
        else:
            self.offset += len(line)
            self._consumed.append(line)
        self.last_text = line.decode("utf-8", errors="surrogateescape")
        return self.last_text

    @property
    def committed(self) -> bool:
        """True when the record just read ends before `offset` (a checkpoint may pass it)."""
        return self.last_terminated and not self.exhausted

    def mark(self) -> tuple[int, int]:
        return self.offset, len(self._consumed)

    def rewind(self, mark: tuple[int, int]) -> None:
        """Un-consume what was read since `mark` (the checkpoint stays before it)."""
        self.offset, consumed = mark
        del self._consumed[consumed:]

    def take_consumed(self) -> bytes:
        data = b"".join(self._consumed)
        self._consumed.clear()
        return data


def read_records(lines: LineReader, dialect: type[csv.Dialect]) -> Iterator[list[str] | csv.Error]:
    """The file's records from `lines`, a record csv cannot parse as its error.

    A record the end of the file cuts short (an open quote) may still be being written: like an
    unterminated last line, it is never consumed, and is read only when `lines` may read one.
    """
    reader = csv.reader(lines, dialect)
    while True:
        mark = lines.mark()
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield exc
            continue
        if lines.exhausted:
            lines.rewind(mark)
            if not lines.read_unterminated:
                return
        yield values


def sniff(header: str) -> type[csv.Dialect]:
    """The delimiter is whichever candidate the header line uses most."""
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    return type("SniffedDialect", (csv.excel,), {"delimiter": delimiter})


def hash_range(handle: BinaryIO, digest: Any, length: int) -> None:
    remaining = length
    while remaining > 0:
        chunk = handle.read(min(remaining, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)


def count_lines(handle: BinaryIO, end: int) -> int:
    """Lines before `end` (for line numbers in labels and quarantine reasons)."""
    handle.seek(0)
    lines, remaining = 0, end
    while remaining > 0:
        chunk = handle.read(min(remaining, 1 << 20))
        if not chunk:
            break
        lines += chunk.count(b"\n")
        remaining -= len(chunk)
    handle.seek(end)
    return lines
