"""Correcting identity through the real CLI, on SQLite and PostgreSQL: merge, split, pin and
reviews re-point latest values and history, leave an audit row and pins, and a rerun of the
ETL keeps the correction."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.db import schema
from tests.helpers import snapshot
from tests.identity.curation_data import (
    DUP_LOSER,
    QQB,
    SOLO,
    SPL_CSV,
    SPL_WEIRD,
    ZZA,
    Done,
    append,
    asset_of,
    history,
    kasparro,
    load,
    members,
    rows,
    source_settings,
)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return source_settings(database_url, tmp_path)


Identity = Callable[..., Done]


@pytest.fixture
def identity(database_url: str, tmp_path: Path) -> Identity:
    """`kasparro identity ...`, the real command line, on this test's database."""

    def run(*args: str, process: bool = False) -> Done:
        return kasparro(database_url, tmp_path, "identity", *args, process=process)

    return run


@pytest.fixture
def loaded(engine: Engine, settings: Settings) -> Settings:
    load(engine, settings)
    return settings


def _ok(done: Any) -> dict[str, Any]:
    assert done.returncode == 0, (done.stdout, done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _refused(done: Any, *mentions: str) -> str:
    err: str = done.stderr.strip()
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in err + done.stdout, err
    assert err.startswith("error:"), err
    for text in mentions:
        assert text in err, err
    return err


def test_merge_moves_members_and_history_audits_it_and_survives_a_rerun(
    engine: Engine, loaded: Settings, identity: Identity
) -> None:
    keep, gone = asset_of(engine, ZZA), asset_of(engine, QQB)
    assert keep != gone
    assert (len(history(engine, asset_id=keep)), len(history(engine, asset_id=gone))) == (3, 2)

    result = _ok(
        identity(
            "merge",
            keep,
            gone,
            "--reason",
            "same coin, renamed on one vendor",
            "--actor",
            "alice",
            "--json",
            process=True,  # as a user runs it
        )
    )

    assert members(engine, keep) == {ZZA, QQB}
    assert members(engine, gone) == set()
    assert len(history(engine, asset_id=keep)) == 5
    assert history(engine, asset_id=gone) == []
    moved = result["after"]["rows_moved"]
    assert (moved["asset_sources"], moved["price_history"], moved["anomalies"]) == (1, 2, 0)
    # Nothing names the removed asset any more, but its redirect and the audit trail.
    with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            if "asset_id" in table.c and table.name not in {"identity_redirects", "identity_audit"}:
                named = sa.select(sa.func.count()).where(table.c.asset_id == gone)
                assert conn.scalar(named) == 0, table.name
    (audit,) = rows(engine, schema.identity_audit)
    assert (audit.id, audit.action, audit.actor) == (result["audit_id"], "merge", "cli:alice")
    assert audit.reason == "same coin, renamed on one vendor"
    assert (audit.asset_id, audit.other_asset_id) == (keep, gone)
    assert {m["member"] for m in audit.before["assets"][gone]["members"]} == {
        "csv_weird:qqb-quark-beta"
    }
    assert audit.before["assets"][gone]["history_rows"] == 2
    assert audit.after["assets"][keep]["history_rows"] == 5
    (pin,) = rows(engine, schema.identity_pins)
    assert (pin.source, pin.source_asset_id, pin.asset_id, pin.audit_id) == (*QQB, keep, audit.id)
    (redirect,) = rows(engine, schema.identity_redirects)
    assert (redirect.asset_id, redirect.target_asset_id) == (gone, keep)

    # New observations of the moved source asset are history of the asset it joined.
    append(loaded.csv_weird_path, "QQB,Quark Beta,11.5,1150000000,5000,2026-05-13")
    load(engine, loaded)
    assert members(engine, keep) == {ZZA, QQB}
    assert len(history(engine, asset_id=keep)) == 6
    assert {r.asset_id for r in history(engine, key=QQB)} == {keep}


def test_a_conflicting_merge_is_refused_and_changes_nothing(
    engine: Engine, loaded: Settings, identity: Identity
) -> None:
    split_asset, dupe = asset_of(engine, SPL_CSV), asset_of(engine, ("csv", "dup-dupe-coin"))
    before = snapshot(engine)

    err = _refused(
        identity("merge", split_asset, dupe, "-r", "x", process=True),
        "both hold (or are pinned for) an asset of csv",
        "split one of them out first",
    )
    assert "csv_weird" in err
    _refused(
        identity("merge", split_asset, "nope", "-r", "x"),
        "no asset nope",
    )
    _refused(
        identity("merge", split_asset, split_asset, "-r", "x"),
        "itself",
    )
    _refused(
        identity("merge", split_asset, dupe, "-r", " "),
        "reason is required",
    )
    assert identity("merge", split_asset, dupe).returncode == 2

    assert snapshot(engine) == before
    assert rows(engine, schema.identity_audit) == []
    assert rows(engine, schema.identity_pins) == []


def test_a_failure_part_way_rolls_the_whole_correction_back(
    engine: Engine, loaded: Settings
) -> None:
    from datetime import UTC, datetime

    from kasparro.db.engine import write_transaction
    from kasparro.identity import curation

    keep, gone = asset_of(engine, ZZA), asset_of(engine, QQB)
    before = snapshot(engine)
    who = curation.Who(actor="cli:test", reason="drill", at=datetime.now(UTC))
    written: list[int] = []

    def merge_then_fail() -> None:
        with write_transaction(engine) as conn:
            outcome = curation.merge(conn, keep, gone, who)
            written.append(outcome.after["rows_moved"]["price_history"])
            raise RuntimeError("after the writes, before the commit")

    with pytest.raises(RuntimeError, match="after the writes"):
        merge_then_fail()
    assert written == [2]  # the merge had written everything
    assert snapshot(engine) == before
    assert rows(engine, schema.identity_audit) == []
    assert rows(engine, schema.identity_redirects) == []


def test_split_moves_a_member_out_with_its_history_and_the_etl_keeps_it_apart(
    engine: Engine, loaded: Settings, identity: Identity
) -> None:
    shared = asset_of(engine, SPL_CSV)
    assert asset_of(engine, SPL_WEIRD) == shared
    result = _ok(
        identity(
            "split",
            shared,
            "csv_weird:spl-split-coin",
            "--reason",
            "a different token",
            "--json",
        )
    )
    apart = result["asset_id"]
    assert apart != shared
    assert members(engine, shared) == {SPL_CSV}
    assert members(engine, apart) == {SPL_WEIRD}
    assert {r.asset_id for r in history(engine, key=SPL_WEIRD)} == {apart}
    assert len(history(engine, asset_id=apart)) == 2
    assert len(history(engine, asset_id=shared)) == 2
    (audit,) = rows(engine, schema.identity_audit)
    assert (audit.action, audit.asset_id, audit.other_asset_id) == ("split", apart, shared)
    assert audit.actor.startswith("cli:")
    (pin,) = rows(engine, schema.identity_pins)
    assert (pin.source_asset_id, pin.asset_id) == (SPL_WEIRD[1], apart)

    # The only member cannot be split off; --to an asset holding its source is refused.
    _refused(
        identity(
            "split",
            apart,
            "csv_weird:spl-split-coin",
            "-r",
            "x",
        ),
        "only member",
    )
    _refused(
        identity("split", shared, "csv:nope", "-r", "x"),
        "csv:nope is not a member",
    )
    _refused(
        identity(
            "split",
            apart,
            "csv_weird:spl-split-coin",
            "--to",
            asset_of(engine, QQB),
            "-r",
            "x",
        ),
        "already holds csv_weird:qqb-quark-beta",
    )

    append(loaded.csv_weird_path, "SPL,Split Coin,2.2,220000000,100,2026-05-13")
    append(loaded.csv_path, "SPL,Split Coin,2.2,220000000,100,2026-05-13")
    load(engine, loaded)
    assert members(engine, shared) == {SPL_CSV}
    assert members(engine, apart) == {SPL_WEIRD}
    assert len(history(engine, asset_id=apart)) == 3

    # Split --to an existing asset; the emptied asset is removed and redirects there.
    solo = asset_of(engine, SOLO)
    done = _ok(
        identity(
            "split",
            apart,
            "csv_weird:spl-split-coin",
            "--to",
            solo,
            "-r",
            "it is solo's",
            "--json",
        )
    )
    assert done["after"]["removed"] == {apart: f"redirects to {solo}"}
    assert members(engine, solo) == {SOLO, SPL_WEIRD}
    assert len(history(engine, asset_id=solo)) == 1 + 3


def test_pin_moves_a_loaded_source_asset_and_places_one_not_loaded_yet(
    engine: Engine, settings: Settings, identity: Identity
) -> None:
    load(engine, settings, "csv")
    solo, split_asset = asset_of(engine, SOLO), asset_of(engine, SPL_CSV)
    # Before csv_weird ever loads: its QQB is pinned to SOLO, and an unknown id to SPL's asset,
    # which keeps SPL's asset for that one (the resolver gives it no other csv_weird asset).
    _ok(
        identity(
            "pin",
            "csv_weird:qqb-quark-beta",
            solo,
            "-r",
            "same",
            "--json",
        )
    )
    _ok(
        identity(
            "pin",
            "csv_weird:spl-later",
            split_asset,
            "-r",
            "kept",
            "--json",
        )
    )
    _refused(
        identity("pin", "csv_weird:other", split_asset, "-r", "x"),
        "pinned for csv_weird:spl-later",
    )
    unknown = identity("pin", "bogus:x", solo, "-r", "x")
    assert unknown.returncode == 2
    assert "unknown source(s) bogus" in unknown.stderr
    _refused(
        identity("pin", "no-colon", solo, "-r", "x"),
        "SOURCE:ID",
    )
    load(engine, settings, "csv_weird")

    assert members(engine, solo) == {SOLO, QQB}
    with engine.connect() as conn:
        method = conn.scalar(
            sa.select(schema.asset_sources.c.match_method).where(
                schema.asset_sources.c.source_asset_id == QQB[1]
            )
        )
    assert method == "pin"
    assert {r.asset_id for r in history(engine, key=QQB)} == {solo}
    assert members(engine, split_asset) == {SPL_CSV}  # kept for csv_weird:spl-later
    assert asset_of(engine, SPL_WEIRD) != split_asset
    # Nor does a merge: the asset is pinned for another csv_weird asset.
    _refused(
        identity(
            "merge",
            split_asset,
            asset_of(engine, SPL_WEIRD),
            "-r",
            "x",
        ),
        "csv_weird (split-coin: spl-later, ",
    )

    # A loaded source asset pinned elsewhere moves now, with its history.
    zza = asset_of(engine, ZZA)
    _ok(
        identity(
            "pin",
            "csv_weird:qqb-quark-beta",
            zza,
            "-r",
            "no, zza",
            "--json",
        )
    )
    assert members(engine, zza) == {ZZA, QQB}
    assert members(engine, solo) == {SOLO}
    assert {r.asset_id for r in history(engine, key=QQB)} == {zza}
    pins = {(p.source, p.source_asset_id): p.asset_id for p in rows(engine, schema.identity_pins)}
    assert pins == {QQB: zza, ("csv_weird", "spl-later"): split_asset}
    listed = _ok(identity("pins", "--json"))
    assert {(p["source_asset_id"], p["asset_id"]) for p in listed} == {
        ("qqb-quark-beta", zza),
        ("spl-later", split_asset),
    }


def test_reviews_list_accept_and_reject(
    engine: Engine, loaded: Settings, identity: Identity
) -> None:
    listed = _ok(identity("reviews", "--json"))
    assert [(r["source"], r["source_asset_id"], r["status"]) for r in listed] == [
        (*DUP_LOSER, "open")
    ]
    kept = listed[0]["kept_as"]
    dupe = asset_of(engine, ("csv", "dup-dupe-coin"))
    assert listed[0]["candidates"][0]["asset_id"] == dupe

    # Its best candidate holds a csv_weird asset already: refused, nothing written.
    _refused(
        identity(
            "reviews",
            "accept",
            "csv_weird:dup-dupe-coins",
            "-r",
            "x",
        ),
        f"{dupe} already holds csv_weird:dup-dupe-coin",
    )
    solo = asset_of(engine, SOLO)
    done = _ok(
        identity(
            "reviews",
            "accept",
            "csv_weird:dup-dupe-coins",
            "--asset",
            solo,
            "-r",
            "it is solo",
            "--actor",
            "carol",
            "--json",
        )
    )
    assert done["action"] == "accept"
    assert members(engine, solo) == {SOLO, DUP_LOSER}
    assert {r.asset_id for r in history(engine, key=DUP_LOSER)} == {solo}
    assert done["after"]["removed"] == {kept: f"redirects to {solo}"}
    (review,) = rows(engine, schema.identity_reviews)
    assert (review.status, review.decided_by, review.decided_asset_id, review.audit_id) == (
        "accepted",
        "cli:carol",
        solo,
        done["audit_id"],
    )
    assert _ok(identity("reviews", "--json")) == []
    every = _ok(identity("reviews", "--status", "all", "--json"))
    assert [r["status"] for r in every] == ["accepted"]
    _refused(
        identity(
            "reviews",
            "reject",
            "csv_weird:dup-dupe-coins",
            "-r",
            "x",
        ),
        "was accepted by cli:carol",
    )
    _refused(
        identity("reviews", "reject", "csv_weird:nope", "-r", "x"),
        "no identity review of csv_weird:nope",
    )
    audit = _ok(identity("audit", "--json"))
    assert [(a["action"], a["actor"]) for a in audit] == [("accept", "cli:carol")]


def test_reject_keeps_it_apart_pinned(engine: Engine, loaded: Settings, identity: Identity) -> None:
    kept = asset_of(engine, DUP_LOSER)
    before = len(history(engine, asset_id=kept))
    done = _ok(
        identity(
            "reviews",
            "reject",
            "csv_weird:dup-dupe-coins",
            "-r",
            "a fork",
            "--json",
        )
    )
    assert done["action"] == "reject"
    assert members(engine, kept) == {DUP_LOSER}
    assert len(history(engine, asset_id=kept)) == before
    (review,) = rows(engine, schema.identity_reviews)
    assert (review.status, review.decided_asset_id) == ("rejected", kept)
    (pin,) = rows(engine, schema.identity_pins)
    assert (pin.source_asset_id, pin.asset_id, pin.audit_id) == (
        DUP_LOSER[1],
        kept,
        done["audit_id"],
    )
