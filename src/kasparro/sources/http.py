"""The one seam through which sources reach HTTP: rate limit, retries with backoff, error taxonomy.

Vendors decide what a response means (`Classifier`); this module decides what to do about it.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import ijson  # type: ignore[import-untyped]
import orjson
from pyrate_limiter import Duration, Limiter, Rate
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity import stop_after_delay as stop_after_seconds

from kasparro import redaction
from kasparro.logging import get_logger
from kasparro.sources.base import BadPayload, SourceError, UpstreamUnavailable

log = get_logger(__name__)

# Maps a non-2xx response to the SourceError to raise; `None` means "not an error".
Classifier = Callable[[httpx.Response], SourceError | None]

_MAX_RETRY_AFTER_SECONDS = 300.0
# Requests are paced this much below the plan's rate: the vendor counts arrivals, and a request
# that waited on a busy machine or network can arrive just inside a window its successor left.
_PACING_HEADROOM = 0.97


class RetryAfter(UpstreamUnavailable):
    """A retriable error that says how long to wait (from a `Retry-After` header)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    max_seconds: float = 120.0
    base_delay: float = 0.5
    max_delay: float = 30.0


def rate_limiter(calls: float, per_seconds: float) -> Limiter:
    """A blocking, thread-safe limiter allowing `calls` per `per_seconds`, paced evenly (one
    call every `per_seconds / calls`, a little slower): a burst of a minute's calls at once would
    break a vendor that counts over a shorter window, and requests in flight together would."""
    interval_ms = math.ceil(per_seconds * Duration.SECOND / calls / _PACING_HEADROOM)
    # No buffer: pyrate-limiter would add it to every wait, slowing the pace by that much.
    return Limiter(Rate(1, max(1, interval_ms)), buffer_ms=0)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds form), bounded; None when absent."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return None


def snippet(response: httpx.Response, limit: int = 160) -> str:
    """A short, single-line excerpt of a body for an error message."""
    return redaction.excerpt(re.sub(r"\s+", " ", response.text).strip(), limit)


class UpstreamClient:
    """A JSON-over-HTTP client for one upstream, shared by every request of a run."""

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        classify: Classifier,
        headers: Mapping[str, str] | None = None,
        timeout: float = 20.0,
        policy: RetryPolicy | None = None,
        limiter: Limiter | None = None,
        secrets: tuple[str, ...] = (),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.vendor = vendor
        self._classify = classify
        self._policy = policy or RetryPolicy()
        self._limiter = limiter
        # Until when every request of this client waits: a 429 (or an outage) seen by one of
        # several requests in flight slows all of them down, not just the one that saw it.
        self._resume_at = 0.0
        self._pause_lock = threading.Lock()
        self._closed = False  # requests still waiting for a slot then give up, unsent
        # Limiter slots are handed out first come, first served: the limiter's own lock lets
        # waiting threads race, and a page the loader waits for must not lose its slot, again
        # and again, to pages requested after it (the crawl would stall with slots unused).
        self._turns = threading.Condition()
        self._tickets = itertools.count()
        self._serving = 0
        redaction.register(secrets)
        self._http = httpx.Client(
            base_url=base_url,
            headers={"accept": "application/json", **(headers or {})},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._closed = True
        self._http.close()

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode JSON, retrying what is worth retrying; raises SourceError subclasses."""
        retrying = Retrying(
            retry=retry_if_exception(self._worth_retrying),
            stop=stop_after_attempt(self._policy.max_attempts)
            | stop_after_seconds(self._policy.max_seconds),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(self._get_once, path, params)

    def stream_items(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """GET a JSON array and yield its objects one by one, never holding the whole body.

        A stream that breaks (truncated body, reset connection) is requested again, within the
        retry policy, and the items already yielded are skipped.
        """
        yielded = 0
        tolerant = False
        retrying = Retrying(
            retry=retry_if_exception(self._worth_retrying),
            stop=stop_after_attempt(self._policy.max_attempts)
            | stop_after_seconds(self._policy.max_seconds),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if not tolerant:
                    try:
                        for index, item in enumerate(self._stream_once(path, params)):
                            if index >= yielded:
                                yielded += 1
                                yield item
                        return
                    except _NotStrictJson:
                        # An item the strict parser refuses (bytes that are not UTF-8, a lone
                        # surrogate escape, 1e400) must not cost the whole body: read it again,
                        # leniently, and let validation quarantine that item alone.
                        tolerant = True
                for index, item in enumerate(self._tolerant_once(path, params)):
                    if index >= yielded:
                        yielded += 1
                        yield item

    def _stream_once(self, path: str, params: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
        self._take_turn()
        count = 0
        try:
            with self._http.stream("GET", path, params=params) as response:
                if not response.is_success:
                    response.read()
                    error = self._classify(response)
                    if error is not None:
                        error.args = (self._redact(str(error)),)
                        raise error
                chunks = _no_surrogate_escapes(
                    _expect_array(response.iter_bytes(chunk_size=1 << 16), self.vendor, path)
                )
                for item in ijson.items(_ChunkReader(chunks), "item", use_float=True):
                    if not isinstance(item, dict):
                        raise BadPayload(
                            f"{self.vendor}: {path}: item {count + 1} is a "
                            f"{type(item).__name__}, expected an object"
                        )
                    count += 1
                    yield item
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            if _lexical(exc):
                raise _NotStrictJson from None
            # Truncated or not JSON at all (an HTML page with a 200): worth another try.
            raise UpstreamUnavailable(
                f"{self.vendor}: {path}: body is not a complete JSON array "
                f"(after {count} items: {redaction.excerpt(str(exc), 120)})"
            ) from None
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(f"{self.vendor}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"{self.vendor}: cannot reach {self._http.base_url.host} "
                f"({self._redact(str(exc)) or type(exc).__name__})"
            ) from None

    def _tolerant_once(
        self, path: str, params: Mapping[str, Any] | None
    ) -> Iterator[dict[str, Any]]:
        """The whole body, parsed leniently: bytes that are not UTF-8 become lone surrogates,
        NaN and out-of-range numbers become floats; validation refuses each such item alone."""
        self._take_turn()
        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"{self.vendor}: {type(exc).__name__}") from None
        error = self._classify(response)
        if error is not None:
            error.args = (self._redact(str(error)),)
            raise error
        try:
            items = lenient_json(response.content)
        except ValueError as exc:
            raise UpstreamUnavailable(
                f"{self.vendor}: {path}: body is not JSON ({redaction.excerpt(str(exc), 120)})"
            ) from None
        if not isinstance(items, list):
            raise BadPayload(f"{self.vendor}: {path}: expected a JSON array")
        for count, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise BadPayload(
                    f"{self.vendor}: {path}: item {count} is a {type(item).__name__}, "
                    "expected an object"
                )
            yield item

    def _get_once(self, path: str, params: Mapping[str, Any] | None) -> Any:
        self._take_turn()
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise UpstreamUnavailable(f"{self.vendor}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(
                f"{self.vendor}: cannot reach {self._http.base_url.host} "
                f"({self._redact(str(exc)) or type(exc).__name__})"
            ) from None
        error = self._classify(response)
        if error is not None:
            error.args = (self._redact(str(error)),)
            raise error
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            pass
        try:  # one value the strict parser refuses must not cost the whole body
            return lenient_json(response.content)
        except ValueError:
            # A 200 that is not JSON: a proxy's HTML page or a truncated body. Worth another try.
            raise UpstreamUnavailable(
                f"{self.vendor}: HTTP {response.status_code} body is not JSON: "
                f"{self._redact(snippet(response))!r}"
            ) from None

    def _worth_retrying(self, exc: BaseException) -> bool:
        # Not once the client is closed: a crawl that ended abandons its requests past the end.
        return isinstance(exc, SourceError) and exc.retriable and not self._closed

    def _take_turn(self) -> None:
        """Wait out a pause, then for the limiter's next slot; a pause that began while this
        request waited for its slot is waited out too (the slot is given up)."""
        while True:
            with self._pause_lock:
                pause = self._resume_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if self._limiter is not None:
                self._acquire_in_turn(self._limiter)
            if self._closed:
                raise SourceError(f"{self.vendor}: the client was closed; request not sent")
            with self._pause_lock:
                if time.monotonic() >= self._resume_at:
                    return

    def _acquire_in_turn(self, limiter: Limiter) -> None:
        with self._turns:
            ticket = next(self._tickets)
            self._turns.wait_for(lambda: self._serving == ticket)
        try:
            limiter.try_acquire(self.vendor)
        finally:
            with self._turns:
                self._serving += 1
                self._turns.notify_all()

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryAfter) and exc.retry_after is not None:
            wait = exc.retry_after
        else:
            backoff = self._policy.base_delay * 2 ** (state.attempt_number - 1)
            wait = random.uniform(0, min(self._policy.max_delay, backoff))  # full jitter
        if isinstance(exc, RetryAfter):  # rate limited (or told to come back): everyone waits
            with self._pause_lock:
                self._resume_at = max(self._resume_at, time.monotonic() + wait)
        return wait

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "upstream_retry",
            vendor=self.vendor,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=redaction.redact(str(exc)),
        )

    def _redact(self, text: str) -> str:
        return redaction.redact(text)


def _expect_array(chunks: Iterator[bytes], vendor: str, path: str) -> Iterator[bytes]:
    """Pass chunks through, failing fast when the body is not a JSON array (an error object)."""
    head = b""
    for chunk in chunks:
        head += chunk
        stripped = head.lstrip()
        if not stripped:
            continue
        if not stripped.startswith(b"["):
            # Redacted before it is cut: an error page may echo the key anywhere in it.
            excerpt = redaction.excerpt(stripped[:4096].decode("utf-8", "replace"), 160)
            if stripped.startswith(b"{"):
                raise BadPayload(f"{vendor}: {path}: expected a JSON array, got {excerpt!r}")
            raise UpstreamUnavailable(f"{vendor}: {path}: body is not JSON: {excerpt!r}")
        yield head
        break
    yield from chunks


def lenient_json(body: bytes) -> Any:
    """JSON as a lenient parser reads it: bytes that are not UTF-8 become lone surrogates, NaN
    and out-of-range numbers become floats. Validation then refuses each such value, so the one
    item holding it is quarantined instead of the whole body being lost. Raises ValueError."""
    return json.loads(body.decode("utf-8", "surrogateescape"))


# A UTF-16 surrogate written as an escape: the strict parser turns a lone one into "?" silently.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _no_surrogate_escapes(chunks: Iterator[bytes]) -> Iterator[bytes]:
    tail = b""
    for chunk in chunks:
        if _SURROGATE_ESCAPE.search(tail + chunk[:8]) or _SURROGATE_ESCAPE.search(chunk):
            raise _NotStrictJson
        tail = chunk[-8:]
        yield chunk


class _NotStrictJson(Exception):
    """A complete body the strict streaming parser cannot read, though a lenient one might."""


def _lexical(exc: Exception) -> bool:
    """Whether the strict parser stopped at a value it refuses, not at a cut-off body."""
    if isinstance(exc, UnicodeDecodeError):
        return True
    text = str(exc)
    return "invalid bytes in UTF8" in text or "overflow" in text or "invalid char" in text


class _ChunkReader:
    """A file-like `read` over an iterator of byte chunks, for ijson."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson probes the type of the stream with read(0)
            return b""
        return next(self._chunks, b"")


def decode_error_body(response: httpx.Response) -> Any:
    """The JSON error body, or None when the body is not JSON (HTML pages, plain text)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def generic_unavailable(vendor: str, response: httpx.Response) -> SourceError:
    """Retriable for 408/429/5xx and for bodies that are not JSON; a bad request otherwise."""
    status = response.status_code
    if status == 429 or status == 408 or status >= 500 or decode_error_body(response) is None:
        return RetryAfter(
            f"{vendor}: HTTP {status}: {snippet(response)!r}", retry_after_seconds(response)
        )
    return BadPayload(f"{vendor}: HTTP {status}: {snippet(response)!r}")
