"""A 17,000-coin CoinGecko crawl against the fake with the plan's rate limit enforced, as a ratio
of the floor the limit itself imposes (pages / calls per minute), concurrent and one by one.

    python -m bench crawl        (or: python -m bench.crawl)

The fake runs in a process of its own (the vendor is not in ours), refuses a request beyond the
limit with a 429 counted per key over a 5 s sliding window (the per-minute limit pro rata, so a
burst would be caught), and takes PAGE_SECONDS to answer a page, about what the vendor takes for
250 coins. The crawl is `CoinGeckoSource.fetch` from the first page to the last, each page
parsed into raw records as a run does; loading is measured by the load benchmark.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

import httpx

from kasparro.config import Settings
from kasparro.fakes.server import FakeUpstreams
from kasparro.sources.coingecko import CoinGeckoSource

UNIVERSE = 17_510  # the fake lists 17,000 of them (it leaves out some it generates)
PER_PAGE = 250
CALLS_PER_MINUTE = 300
WINDOW_SECONDS = 5.0
PAGE_SECONDS = 0.4
IN_FLIGHT = 8
TARGET = 1.1


def _serve(conn: Connection) -> None:
    options: dict[str, Any] = {"rate_window_seconds": WINDOW_SECONDS, "page_seconds": PAGE_SECONDS}
    with FakeUpstreams(coins=UNIVERSE, coingecko_rate_limit=CALLS_PER_MINUTE, **options) as fake:
        conn.send((fake.coingecko_url, fake.coingecko.url, len(fake.universe.coingecko_items())))
        conn.recv()  # until the benchmark is done


def _crawl(base_url: str, admin_url: str, in_flight: int) -> dict[str, Any]:
    settings = Settings(
        _env_file=None,
        database_url="sqlite://",
        coingecko_base_url=base_url,
        coingecko_per_page=PER_PAGE,
        coingecko_max_pages=1_000,
        coingecko_rate_limit_per_minute=CALLS_PER_MINUTE,
        http_max_in_flight=in_flight,
    )
    httpx.delete(f"{admin_url}/__admin__/requests")
    source = CoinGeckoSource.from_settings(settings)
    pages = records = 0
    started = time.perf_counter()
    try:
        for batch in source.fetch(None):
            pages += 1
            records += len(batch.records)
    finally:
        source.close()
    elapsed = time.perf_counter() - started
    seen = httpx.get(f"{admin_url}/__admin__/requests").json()
    requests = sum(n for key, n in seen["counts"].items() if key.endswith("/coins/markets"))
    floor = pages * 60 / CALLS_PER_MINUTE
    return {
        "in_flight": in_flight,
        "pages": pages,
        "records": records,
        "seconds": elapsed,
        "floor_seconds": floor,
        "ratio": elapsed / floor,
        "requests": requests,
        "wasted_requests": requests - pages,
        "rate_limited": seen["rate_limited"].get("coingecko", 0),
        "peak_in_flight": seen["peak_pages_in_flight"],
    }


def main(argv: list[str]) -> dict[str, Any]:
    del argv
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(theirs,))
    server.start()
    try:
        base_url, admin_url, listed = ours.recv()
        print(
            f"crawl: {listed:,} coins, {PER_PAGE}/page, {CALLS_PER_MINUTE} calls/min enforced by "
            f"the fake ({WINDOW_SECONDS:g} s window), {PAGE_SECONDS:g} s per page",
            flush=True,
        )
        runs = {}
        for label, in_flight in (("concurrent", IN_FLIGHT), ("one by one", 1)):
            run = _crawl(base_url, admin_url, in_flight)
            runs[label] = run
            print(
                f"  {label:<10} ({run['in_flight']} in flight): {run['pages']} pages, "
                f"{run['records']:,} records in {run['seconds']:.2f} s; floor "
                f"{run['floor_seconds']:.2f} s: ratio {run['ratio']:.3f}; "
                f"{run['rate_limited']} refused (429), {run['wasted_requests']} wasted "
                f"requests, at most {run['peak_in_flight']} in flight",
                flush=True,
            )
            time.sleep(WINDOW_SECONDS)  # the next run starts with the fake's window empty
    finally:
        ours.send("stop")
        server.join(timeout=30)
    concurrent, sequential = runs["concurrent"], runs["one by one"]
    return {
        "ratio": concurrent["ratio"],
        "sequential_ratio": sequential["ratio"],
        "rate_limited": concurrent["rate_limited"] + sequential["rate_limited"],
        "wasted_requests": concurrent["wasted_requests"],
        "met": concurrent["ratio"] <= TARGET and concurrent["rate_limited"] == 0,
        "runs": runs,
    }


if __name__ == "__main__":
    result = main(sys.argv[1:])
    sys.exit(0 if result["met"] else 1)
