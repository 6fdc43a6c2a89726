"""runs.compare_observations: the comparison the database computes equals the plain reading of
the history rows (newest row per source asset and run; added, removed, top moves)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.api.queries import runs as runs_queries
from kasparro.db.schema import price_history

T0 = datetime(2026, 11, 1, tzinfo=UTC)
# Ids whose byte order differs from a locale's order (case, accents, digits, punctuation).
IDS = ["b", "B", "a-1", "a1", "é", "e", "Z", "zz", "_x", "ü-2", "10", "9"]


def _rows(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for n in range(300):
        key = f"{rng.choice(IDS)}{n}" if n % 3 else rng.choice(IDS) + str(n % 40)
        for run_id in ("run-a", "run-b", "run-other"):
            if rng.random() < 0.45:
                continue
            for k in range(rng.randint(1, 3)):  # several observations of one asset in a run
                rows.append(
                    {
                        "source": "coingecko",
                        "source_asset_id": key,
                        "observed_at": T0 + timedelta(minutes=k + rng.randint(0, 500)),
                        "asset_id": f"asset-{key}-{run_id}",
                        "price_usd": rng.choice([0.0, 1.0, 2.0, rng.uniform(0.01, 100)]),
                        "ingested_at": T0,
                        "run_id": run_id,
                        "raw_id": "r" * 64,
                    }
                )
    # The same key in another source must not count.
    rows.append({**rows[0], "source": "csv", "run_id": "run-b"})
    unique = {(r["source"], r["source_asset_id"], r["observed_at"]): r for r in rows}
    return list(unique.values())


def _expected(rows: list[dict[str, object]], run_id: str) -> dict[str, dict[str, object]]:
    newest: dict[str, dict[str, object]] = {}
    for row in rows:
        if row["source"] != "coingecko" or row["run_id"] != run_id:
            continue
        key = str(row["source_asset_id"])
        seen = newest.get(key)
        if seen is None or row["observed_at"] > seen["observed_at"]:  # type: ignore[operator]
            newest[key] = row
    return newest


def test_comparison_in_sql_equals_the_plain_reading(engine: Engine) -> None:
    rows = _rows(random.Random(15))
    with engine.begin() as conn:
        conn.execute(sa.insert(price_history), rows)
    seen_a, seen_b = _expected(rows, "run-a"), _expected(rows, "run-b")
    moves = []
    for key in seen_a.keys() & seen_b.keys():
        pa, pb = float(seen_a[key]["price_usd"]), float(seen_b[key]["price_usd"])  # type: ignore[arg-type]
        if pa > 0:
            moves.append((key, seen_b[key]["asset_id"], pa, pb, (pb - pa) / pa * 100))
    moves.sort(key=lambda m: (-abs(m[4]), m[0]))

    with engine.connect() as conn:
        got = runs_queries.compare_observations(
            conn, "coingecko", "run-a", "run-b", listed=7, moves=5
        )
    assert got.added_count == len(seen_b.keys() - seen_a.keys()) > 7
    assert got.removed_count == len(seen_a.keys() - seen_b.keys()) > 7
    assert got.added == sorted(seen_b.keys() - seen_a.keys())[:7]
    assert got.removed == sorted(seen_a.keys() - seen_b.keys())[:7]
    assert [
        (m.source_asset_id, m.asset_id, m.price_a, m.price_b, m.change_pct) for m in got.moves
    ] == moves[:5]


def test_a_run_compared_with_itself_changes_nothing(engine: Engine) -> None:
    rows = _rows(random.Random(16))
    with engine.begin() as conn:
        conn.execute(sa.insert(price_history), rows)
    with engine.connect() as conn:
        got = runs_queries.compare_observations(
            conn, "coingecko", "run-a", "run-a", listed=100, moves=10
        )
        nothing = runs_queries.compare_observations(
            conn, "coingecko", "run-none", "run-none", listed=100, moves=10
        )
    assert (got.added_count, got.removed_count, got.added, got.removed) == (0, 0, [], [])
    assert got.moves and all(m.change_pct == 0 for m in got.moves)
    assert nothing == runs_queries.ObservedChanges(0, 0, [], [], [])
