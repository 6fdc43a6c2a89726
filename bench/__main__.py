"""`make bench`: the load, API and soak benchmarks in turn, on scratch PostgreSQL databases.

    python -m bench [load|api|soak|hostile]...

Each prints its own figures; a summary of the targets closes the run. Needs PostgreSQL
(BENCH_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and, for the
API benchmark, wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from bench import api, hostile_soak, load, soak

BENCHMARKS: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "load": load.main,
    "api": api.main,
    "soak": soak.main,
    "hostile": hostile_soak.main,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    results: dict[str, dict[str, Any]] = {}
    for name in chosen:
        print(f"== {name}", flush=True)
        results[name] = BENCHMARKS[name]([])
    print("== targets")
    if "load" in results:
        r = results["load"]
        print(f"  load ratio {r['ratio']:.2f} (>= 0.50); RSS +{r['rss_growth_mb']:.0f} MB (<= 100)")
    if "api" in results:
        r = results["api"]
        print(
            f"  /data ratio {r['ratio']:.2f} (>= 0.40); "
            f"deep cursor {r['depth_ratio']:.2f}x (<= 1.5)"
        )
    if "soak" in results:
        r = results["soak"]
        print(
            f"  soak: {r['kills']} kills, lost {sum(r['lost'].values())}, "
            f"duplicated {sum(r['extra'].values())} (0 and 0)"
        )
    if "hostile" in results:
        r = results["hostile"]
        print(
            f"  hostile soak: {r['hostile']} hostile records, {r['not_quarantined']} not "
            f"quarantined, {r['wrong']} wrong values served, {r['lost']} good records lost, "
            f"{r['pieces']} secret pieces seen (all 0)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
