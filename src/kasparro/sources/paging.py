"""Fetching a paged listing with several requests in flight, handed on in page order.

A paged source says how to fetch page N (through its `UpstreamClient`, whose limiter paces every
request to the plan's rate) and how to tell the last page. `PagedCrawl.pages` keeps up to
`max_in_flight` pages requested ahead, so the upstream's latency hides behind the rate limit, and
yields them strictly in order: a source turns each into a batch whose checkpoint then covers
exactly the contiguous pages loaded, so a crash resumes with no duplicate and no gap.

Overshoot is bounded: pages are requested at most `max_in_flight - 1` beyond the one that turns
out to be the last (a short or empty page; none beyond the first page, which goes alone); those
not yet sent are cancelled, and none is ever requested beyond `last_page`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from kasparro.logging import get_logger
from kasparro.models import RawRecord
from kasparro.sources.base import Batch, Cursor, Source

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One fetched page: its number, what the source's `fetch_page` returned, whether it ends
    the crawl."""

    number: int
    content: T
    last: bool


@dataclass(frozen=True, slots=True)
class PagedCrawl(Generic[T]):
    """How one paged source is crawled.

    `fetch_page(n)` sends page n's request and returns its content (raising `SourceError`s as
    the client does); `is_final(content)` says whether that page ends the listing (short or
    empty); `last_page` caps the crawl; `max_in_flight` is how many pages may be requested at
    once (1: one after another).
    """

    fetch_page: Callable[[int], T]
    is_final: Callable[[T], bool]
    last_page: int | None = None
    max_in_flight: int = 1
    vendor: str = ""

    def pages(self, first: int) -> Iterator[Page[T]]:
        """Pages from `first` on, in order, up to and including the last one."""
        if self.max_in_flight <= 1:
            yield from self._one_by_one(first)
            return
        pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix=f"{self.vendor}-page")
        ahead: dict[int, Future[T]] = {}
        next_request = first
        # The first page goes alone: a wrong key or plan then costs one refused request, not
        # max_in_flight of them, and a listing of one page is fetched exactly once.
        window = 1

        def request_ahead() -> None:
            nonlocal next_request
            while len(ahead) < window and not self._beyond_cap(next_request):
                ahead[next_request] = pool.submit(self.fetch_page, next_request)
                next_request += 1

        try:
            number = first
            request_ahead()
            while True:
                content = ahead.pop(number).result()  # a failed page fails the crawl here
                window = self.max_in_flight
                if self._ends(number, content):
                    # Pages past the end: those not started are cancelled; those started (sent,
                    # or waiting for a slot they give up once the client closes) are the
                    # overshoot, at most max_in_flight - 1, logged so it stays visible.
                    started = sum(not future.cancel() for future in ahead.values())
                    ahead.clear()
                    log.info("crawl_end", vendor=self.vendor, page=number, past_the_end=started)
                    yield Page(number, content, last=True)
                    return
                request_ahead()  # before handing the page on, so the loader never idles them
                yield Page(number, content, last=False)
                number += 1
        finally:
            for future in ahead.values():
                future.cancel()
            # Requests past the end still waiting for a slot must not hold up the run's end:
            # they finish (or fail, once the source closes its client) on their own.
            pool.shutdown(wait=False, cancel_futures=True)

    def _one_by_one(self, first: int) -> Iterator[Page[T]]:
        number = first
        while True:
            content = self.fetch_page(number)
            last = self._ends(number, content)
            yield Page(number, content, last)
            if last:
                return
            number += 1

    def _ends(self, number: int, content: T) -> bool:
        return self.is_final(content) or (self.last_page is not None and number >= self.last_page)

    def _beyond_cap(self, number: int) -> bool:
        return self.last_page is not None and number > self.last_page


class PagedSource(Source, Generic[T]):
    """A source whose upstream lists its items in numbered pages of `per_page` (a market
    listing): it says how one page is fetched (`fetch_page`) and, if a page's content is more
    than its items, where they are (`items_of`); the crawl, the checkpoint (`{"next_page": n}`,
    back to 1 once a crawl has finished) and the batches, a page each, are the same for all.
    Its constructor takes the settings (and a transport, for tests) and calls `start_crawl`."""

    per_page: int
    page_cap: int | None
    crawl: PagedCrawl[T]

    def start_crawl(self, settings: CoreSettings, per_page: int, page_cap: int | None) -> None:
        self.per_page, self.page_cap = per_page, page_cap
        self.crawl = PagedCrawl(
            fetch_page=self.fetch_page,
            is_final=lambda content: len(self.items_of(content)) < per_page,
            last_page=page_cap,
            max_in_flight=settings.http_max_in_flight,
            vendor=self.name,
        )

    @abstractmethod
    def fetch_page(self, page: int) -> T:
        """Page `page`'s content (1-based), raising the client's `SourceError`s."""

    def items_of(self, content: T) -> Sequence[Any]:
        return cast(Sequence[Any], content)

    def first_page(self, cursor: Cursor | None) -> int:
        """Where a crawl resumes: the checkpoint's page, or 1 (none, or past a lowered cap)."""
        page = int(cursor.get("next_page", 1)) if cursor else 1
        return 1 if page < 1 or (self.page_cap is not None and page > self.page_cap) else page

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        for fetched in self.crawl.pages(self.first_page(cursor)):
            number = fetched.number
            yield Batch(
                records=[RawRecord.of(self.name, item) for item in self.items_of(fetched.content)],
                cursor=(
                    {"next_page": 1, "pages_in_last_crawl": number}
                    if fetched.last
                    else {"next_page": number + 1}
                ),
                label=f"page {number}",
            )
