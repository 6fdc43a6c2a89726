"""The bulk statements the loader is built on, on both databases and on both paths (a few rows
as statements, many by COPY on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.db.engine import write_transaction
from kasparro.db.schema import assets, raw_payloads
from kasparro.load.identity_store import allocate_asset_ids
from kasparro.load.sql import COPY_THRESHOLD, in_list, insert_ignore, insert_new, insert_rows
from kasparro.models import canonical_json

NOW = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
AWKWARD = {
    "name": 'Quote " backslash \\ tab \t newline \n nul-free ✓ 漢字',
    "nested": {"quotes": {"USD": {"price": 1.5e-9, "volume_24h": None}}},
    "list": [1, "two", None, True],
    "empty": "",
}


def _raw(n: int, serialized: bool = False) -> dict[str, object]:
    payload = {**AWKWARD, "id": f"coin-{n}"}
    return {
        "raw_id": f"{n:064d}",
        "source": "coinpaprika",
        # The loader hands over a payload's canonical JSON, serialized once when it was hashed.
        "payload": canonical_json(payload) if serialized else payload,
        "run_id": "00000000-0000-0000-0000-000000000001",
        "fetched_at": NOW,
    }


@pytest.mark.parametrize("serialized", [False, True], ids=["document", "json-bytes"])
@pytest.mark.parametrize("rows", [3, COPY_THRESHOLD * 3], ids=["statements", "bulk"])
def test_insert_ignore_counts_only_new_rows_and_keeps_payloads_exactly(
    engine: Engine, rows: int, serialized: bool
) -> None:
    first = [_raw(n, serialized) for n in range(rows)]
    with write_transaction(engine) as conn:
        assert insert_ignore(conn, raw_payloads, first) == rows
    # Half old, half new, and one repeated inside the same call.
    second = [_raw(n, serialized) for n in range(rows // 2, rows + rows // 2)] + [
        _raw(rows, serialized)
    ]
    with write_transaction(engine) as conn:
        assert insert_ignore(conn, raw_payloads, second) == rows // 2
    with engine.connect() as conn:
        stored = conn.execute(sa.select(raw_payloads).order_by(raw_payloads.c.raw_id)).all()
    assert len(stored) == rows + rows // 2
    assert stored[0].payload == {**AWKWARD, "id": "coin-0"}
    assert stored[0].fetched_at == NOW


@pytest.mark.parametrize("rows", [3, COPY_THRESHOLD * 3], ids=["statements", "bulk"])
def test_insert_new_writes_only_unknown_keys_once(engine: Engine, rows: int) -> None:
    first = [_raw(n, serialized=True) for n in range(rows)]
    with write_transaction(engine) as conn:
        assert insert_new(conn, raw_payloads, first, key="raw_id") == rows
    # Half known, half new, and one new row given twice.
    second = [_raw(n, serialized=True) for n in range(rows // 2, rows + rows // 2)]
    second.append(_raw(rows, serialized=True))
    with write_transaction(engine) as conn:
        assert insert_new(conn, raw_payloads, second, key="raw_id") == rows // 2
    with engine.connect() as conn:
        stored = conn.execute(sa.select(raw_payloads).order_by(raw_payloads.c.raw_id)).all()
    assert [r.raw_id for r in stored] == [f"{n:064d}" for n in range(rows + rows // 2)]
    assert stored[-1].payload == {**AWKWARD, "id": f"coin-{rows + rows // 2 - 1}"}


def test_a_rolled_back_bulk_insert_leaves_nothing_and_the_next_one_works(engine: Engine) -> None:
    rows = [_raw(n) for n in range(COPY_THRESHOLD * 2)]

    def load_then_crash() -> None:
        with write_transaction(engine) as conn:
            insert_ignore(conn, raw_payloads, rows)
            raise RuntimeError("crash after the load, before the commit")

    with pytest.raises(RuntimeError):
        load_then_crash()
    with write_transaction(engine) as conn:
        assert insert_ignore(conn, raw_payloads, rows) == len(rows)
        assert insert_ignore(conn, raw_payloads, rows) == 0  # staging reused in one transaction


@pytest.mark.parametrize("rows", [2, COPY_THRESHOLD * 2], ids=["statements", "bulk"])
def test_a_plain_insert_refuses_a_duplicate(engine: Engine, rows: int) -> None:
    batch = [_asset(f"coin-{n}") for n in range(rows)]
    with write_transaction(engine) as conn:
        assert insert_rows(conn, assets, batch) == rows
    with pytest.raises(sa.exc.IntegrityError), write_transaction(engine) as conn:
        insert_rows(conn, assets, batch)


def _asset(asset_id: str) -> dict[str, object]:
    return {
        "asset_id": asset_id,
        "symbol": "X",
        "name": asset_id,
        "created_at": NOW,
        "created_run_id": "r",
    }


def test_in_list_matches_exactly_the_values_given(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        insert_rows(conn, assets, [_asset(f"a{n}") for n in range(10)])
        found = conn.scalars(
            sa.select(assets.c.asset_id).where(in_list(conn, assets.c.asset_id, ["a1", "a7", "zz"]))
        )
        assert sorted(found) == ["a1", "a7"]


def test_asset_ids_take_the_smallest_free_suffix(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        insert_rows(conn, assets, [_asset(i) for i in ("foo", "foo-2", "foo-4", "bar-2", "b_z")])
        allocated = allocate_asset_ids(conn, ["foo", "foo", "bar", "baz", "foo", "b%z", "bz"])
    assert allocated == ["foo-3", "foo-5", "bar", "baz", "foo-6", "b%z", "bz"]


def test_a_long_run_of_taken_suffixes_is_skipped_in_a_few_queries(engine: Engine) -> None:
    taken = ["moon", *(f"moon-{n}" for n in range(2, 40)), "sun-3"]
    statements: list[str] = []
    with write_transaction(engine) as conn:
        insert_rows(conn, assets, [_asset(i) for i in taken])
        sa.event.listen(conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        allocated = allocate_asset_ids(conn, ["moon", "sun", "sun", "sun", "moon"])
    assert allocated == ["moon-40", "sun", "sun-2", "sun-4", "moon-41"]
    # One query per round: the first window covers the sun, the moon needs wider ones.
    assert 2 <= len(statements) <= 4
