"""`make bench`: the load, API and soak benchmarks in turn, on scratch PostgreSQL databases.

    python -m bench [load|api|soak|hostile|identity|ui|consensus|crawl]...

Each prints its own figures; a summary of the targets closes the run. Needs PostgreSQL
(BENCH_POSTGRES_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and, for the
API benchmark, wrk (Debian: apt-get install wrk).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from bench import api, consensus, crawl, hostile_soak, identity_scale, load, soak
from bench import ui as console

BENCHMARKS: dict[str, Callable[[list[str]], dict[str, Any]]] = {
    "load": load.main,
    "api": api.main,
    "soak": soak.main,
    "hostile": hostile_soak.main,
    "ui": console.main,
    "identity": identity_scale.main,
    "consensus": consensus.main,
    "crawl": crawl.main,
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
    if "identity" in results and not results["identity"].get("skipped"):
        r = results["identity"]
        print(
            f"  identity first load: ratio {r['ratio']:.2f} of COPY, resolver "
            f"{r['identity_share']:.0%} of the time; unchanged rerun {r['rerun_seconds']:.1f} s"
        )
    if "ui" in results:
        r = results["ui"]
        over = ", ".join(r["slow"] + r["heavy"]) or "none"
        print(
            f"  console: slowest page p50 {r['max_p50_ms']:.1f} ms (<= 50), heaviest "
            f"{r['max_weight_kb']:.0f} KB (<= 300); over: {over}"
        )
    if "consensus" in results:
        r = results["consensus"]
        print(
            f"  consensus: worst error {r['worst_error']:.3%} (<= 0.5%), every liar named "
            f"{r['all_named']}; {r['first_rate']:,.0f} assets/s for {r['assets']:,} assets"
        )
    if "crawl" in results:
        r = results["crawl"]
        print(
            f"  crawl: {r['ratio']:.3f}x the rate limit's floor (<= 1.1; one by one "
            f"{r['sequential_ratio']:.2f}x), {r['rate_limited']} refused (0)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
