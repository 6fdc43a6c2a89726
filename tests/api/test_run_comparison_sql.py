"""runs.compare_observations: the comparison the database computes equals the plain reading of
the history rows (newest row per source asset and run; added, removed, top moves), and so does
the one it stores for two finished runs and reads back."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.api.queries import runs as runs_queries
from kasparro.db.schema import etl_runs, price_history, run_comparisons
from tests.api.conftest import run_row

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


def _plain(rows: list[dict[str, object]], listed: int, moves: int) -> runs_queries.ObservedChanges:
    """The comparison of run-a and run-b read plainly from the rows, in Python."""
    seen_a, seen_b = _expected(rows, "run-a"), _expected(rows, "run-b")
    moved = []
    for key in seen_a.keys() & seen_b.keys():
        pa, pb = float(seen_a[key]["price_usd"]), float(seen_b[key]["price_usd"])  # type: ignore[arg-type]
        if pa > 0:
            change = (pb - pa) / pa * 100
            moved.append(
                runs_queries.PriceChange(key, str(seen_b[key]["asset_id"]), pa, pb, change)
            )
    moved.sort(key=lambda m: (-abs(m.change_pct), m.source_asset_id))
    added, removed = seen_b.keys() - seen_a.keys(), seen_a.keys() - seen_b.keys()
    return runs_queries.ObservedChanges(
        added_count=len(added),
        removed_count=len(removed),
        added=sorted(added)[:listed],
        removed=sorted(removed)[:listed],
        moves=moved[:moves],
    )


def test_comparison_in_sql_equals_the_plain_reading(engine: Engine) -> None:
    rows = _rows(random.Random(15))
    with engine.begin() as conn:
        conn.execute(sa.insert(price_history), rows)
    with engine.connect() as conn:
        got = runs_queries.compare_observations(
            conn, "coingecko", "run-a", "run-b", listed=7, moves=5
        )
    assert got == _plain(rows, listed=7, moves=5)
    assert got.added_count > 7 and got.removed_count > 7 and len(got.moves) == 5


def test_a_stored_comparison_equals_the_plain_reading(engine: Engine) -> None:
    """Two finished runs (not one after the other: a run of theirs between them): the first
    request stores their comparison, the next ones read it, all equal to the plain reading."""
    rows = _rows(random.Random(17))
    with engine.begin() as conn:
        conn.execute(sa.insert(price_history), rows)
        conn.execute(
            sa.insert(etl_runs),
            [
                run_row(run_id, "coingecko", "success", T0 + timedelta(hours=h), T0)
                for h, run_id in enumerate(("run-a", "run-other", "run-b"))
            ],
        )
    for listed, moves in ((100, 10), (7, 5), (100, 10)):
        with engine.connect() as conn:
            got = runs_queries.comparison(
                conn, "coingecko", "run-a", "run-b", listed=listed, moves=moves
            )
        assert got.origin == "first_request"
        assert got.changes == _plain(rows, listed, moves)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(run_comparisons)) == 1


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
