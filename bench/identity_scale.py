"""Identity at scale: the first load of both real vendor universes on PostgreSQL, with identity.

The universe (`../shared/identity-eval`, or BENCH_IDENTITY_UNIVERSE) is the evaluation set of
`kasparro identity evaluate --universe`: every CoinGecko coin and the active CoinPaprika coins,
with seeded synthetic market data, served by the fakes over HTTP. Measured, on a scratch
database: the first load of CoinGecko then CoinPaprika end to end (records/s), the same rows
by a raw COPY (as `bench.load` does, into same-shaped tables), the resolver's own time (the
pure `resolve` calls and the candidate lookups, timed around the functions the loader calls),
and a rerun over the unchanged upstream, which must be near-free.

    python -m bench.identity_scale [--universe DIR] [--seed N]

Skipped, with a message, when the universe directory is absent (it is not shipped).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import scratch_postgres
from bench.load import raw_copy, settle
from kasparro.db.engine import create_db_engine
from kasparro.etl.runner import run_source, warm_up
from kasparro.identity import resolver
from kasparro.identity.universe_eval import (
    DEFAULT_SEED,
    NoiseModel,
    clock,
    priced,
    read_universe,
    settings_for,
)
from kasparro.load import identity_store

UNIVERSE = Path(os.environ.get("BENCH_IDENTITY_UNIVERSE", "../shared/identity-eval"))
ORDER = ("coingecko", "coinpaprika")


class Stopwatch:
    """Seconds spent inside the wrapped functions, per name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        return timed


@contextmanager
def timing_identity(watch: Stopwatch) -> Iterator[None]:
    """Time `resolve` and `fetch_candidates` wherever the loader imported them from (the load
    writes in this process; only fetching and parsing run in the fetch process)."""
    targets = {"resolve": resolver.resolve, "fetch_candidates": identity_store.fetch_candidates}
    patched: list[tuple[Any, str, Any]] = []
    for module in [m for m in list(sys.modules.values()) if m is not None]:
        if not getattr(module, "__name__", "").startswith("kasparro."):
            continue
        for name, function in targets.items():
            if getattr(module, name, None) is function:
                patched.append((module, name, function))
                setattr(module, name, watch.wrap(name, function))
    try:
        yield
    finally:
        for module, name, function in patched:
            setattr(module, name, function)


def load_both(database_url: str, settings: Any) -> dict[str, Any]:
    engine = create_db_engine(database_url)
    runs: dict[str, Any] = {}
    try:
        for source in ORDER:
            started = time.perf_counter()
            result = run_source(engine, settings, source, trigger="bench")
            if result.status == "failed":
                raise SystemExit(f"{source} run failed: {result.error}")
            runs[source] = {
                "seconds": time.perf_counter() - started,
                "processed": result.records_processed,
                "loaded": result.records_loaded,
            }
    finally:
        engine.dispose()
    return runs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--universe", type=Path, default=UNIVERSE)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    if not (args.universe / "pairs.csv").is_file():
        print(f"identity scale: skipped, no universe at {args.universe} (not shipped)")
        return {"skipped": True}
    from kasparro.fakes.listing import Listing, serve

    universe = read_universe(args.universe)
    cg_coins, pp_coins = priced(universe, NoiseModel(), args.seed)
    listing = Listing(cg_coins, pp_coins, clock())
    watch = Stopwatch()
    with serve(listing) as fake, scratch_postgres("kasparro_bench_identity") as url:
        pages = len(listing.coingecko_items()) // 250 + 1
        settings = settings_for(url, fake.coingecko_url, fake.coinpaprika_url, pages)
        warm_up()
        settle(url)
        with timing_identity(watch):
            first = load_both(url, settings)
        rerun = load_both(url, settings)
        settle(url)
        baseline = raw_copy(url)
    records = sum(r["processed"] for r in first.values())
    seconds = sum(r["seconds"] for r in first.values())
    identity_seconds = sum(watch.seconds.values())
    ours_rate = records / seconds
    copy_rate = records / baseline["seconds"]
    rerun_seconds = sum(r["seconds"] for r in rerun.values())
    print(
        f"identity scale: {len(cg_coins):,} CoinGecko + {len(pp_coins):,} CoinPaprika coins "
        f"(seed {args.seed}), first load on PostgreSQL"
    )
    for source, run in first.items():
        print(f"  {source}: {run['processed']:,} records in {run['seconds']:.1f} s")
    print(f"  ours, end to end: {ours_rate:,.0f} records/s; raw COPY: {copy_rate:,.0f} records/s")
    print(f"  ratio ours / COPY: {ours_rate / copy_rate:.2f}")
    print(
        f"  identity: {identity_seconds:.1f} s of {seconds:.1f} s "
        f"({identity_seconds / seconds:.0%}): resolve {watch.seconds.get('resolve', 0):.1f} s, "
        f"candidate lookups {watch.seconds.get('fetch_candidates', 0):.1f} s"
    )
    loaded_again = sum(r["loaded"] for r in rerun.values())
    print(f"  unchanged rerun: {rerun_seconds:.1f} s, {loaded_again} records written")
    return {
        "records": records,
        "seconds": seconds,
        "ours_records_per_s": ours_rate,
        "copy_records_per_s": copy_rate,
        "ratio": ours_rate / copy_rate,
        "identity_seconds": identity_seconds,
        "identity_share": identity_seconds / seconds,
        "rerun_seconds": rerun_seconds,
        "rerun_loaded": loaded_again,
    }


if __name__ == "__main__":
    main()
