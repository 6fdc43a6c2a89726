"""/identity over HTTP, on SQLite and PostgreSQL: corrections need the admin key, answer problem
documents when refused, re-point history, and show in /assets/{id} and the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.consensus.refresh import compute_now
from kasparro.db import schema
from tests.api.conftest import ADMIN_KEY, api_settings, assert_problem
from tests.helpers import snapshot
from tests.identity.curation_data import (
    DUP_LOSER,
    QQB,
    SOLO,
    SPL_CSV,
    SPL_WEIRD,
    ZZA,
    asset_of,
    history,
    load,
    members,
    rows,
    write_sources,
)

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    csv_path, weird_path = write_sources(tmp_path)
    return api_settings(database_url, csv_path=csv_path, csv_weird_path=weird_path)


@pytest.fixture
def curated(engine: Engine, settings: Settings) -> Settings:
    load(engine, settings)
    return settings


def _merge(keep: str, gone: str, **extra: Any) -> dict[str, Any]:
    return {"into": keep, "asset_id": gone, "reason": "one coin", **extra}


def test_corrections_need_the_admin_key_and_change_nothing_without_it(
    client: TestClient, engine: Engine, curated: Settings
) -> None:
    keep, gone = asset_of(engine, ZZA), asset_of(engine, QQB)
    before = snapshot(engine)
    calls = [
        ("/identity/merge", _merge(keep, gone)),
        (
            "/identity/split",
            {"asset_id": keep, "source": "csv", "source_asset_id": ZZA[1], "reason": "x"},
        ),
        (
            "/identity/pin",
            {"source": "csv_weird", "source_asset_id": QQB[1], "asset_id": keep, "reason": "x"},
        ),
        (f"/identity/reviews/{DUP_LOSER[0]}/{DUP_LOSER[1]}/accept", {"reason": "x"}),
        (f"/identity/reviews/{DUP_LOSER[0]}/{DUP_LOSER[1]}/reject", {"reason": "x"}),
    ]
    for path, body in calls:
        missing = assert_problem(client.post(path, json=body), 401)
        assert missing["type"].endswith("missing-api-key")
        wrong = client.post(path, json=body, headers={"X-API-Key": "not-the-key-0123456789"})
        assert_problem(wrong, 403)
        assert ADMIN_KEY not in wrong.text
    assert snapshot(engine) == before
    assert rows(engine, schema.identity_audit) == []


def test_merge_over_http_redirects_the_old_id_and_shows_who_decided(
    client: TestClient, engine: Engine, curated: Settings
) -> None:
    keep, gone = asset_of(engine, ZZA), asset_of(engine, QQB)
    response = client.post(
        "/identity/merge", json=_merge(keep, gone), headers={**ADMIN, "X-Actor": "bob@ops"}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["action"], result["asset_id"]) == ("merge", keep)
    assert result["after"]["rows_moved"]["price_history"] == 2
    assert members(engine, keep) == {ZZA, QQB}
    assert {r.asset_id for r in history(engine, key=QQB)} == {keep}

    moved = client.get(f"/assets/{gone}", params={"x": "1"}, follow_redirects=False)
    assert moved.status_code == 308
    assert moved.headers["location"] == f"/assets/{keep}?x=1"
    moved_history = client.get(
        f"/assets/{gone}/history", params={"limit": 5}, follow_redirects=False
    )
    assert moved_history.status_code == 308
    assert moved_history.headers["location"] == f"/assets/{keep}/history?limit=5"
    # In bulk, the merged id gets the asset it joined, said so in meta.merged.
    compute_now(engine, curated)
    bulk = client.get("/prices", params=[("asset_id", gone), ("asset_id", "nope")]).json()
    assert [row["asset_id"] for row in bulk["data"]] == [keep]
    assert (bulk["meta"]["merged"], bulk["meta"]["missing"]) == ({gone: keep}, ["nope"])
    # The consensus endpoints lead there too (its reference series moved with the merge).
    for suffix, query in (("/price", {}), ("/price/history", {"limit": "3"})):
        moved_price = client.get(f"/assets/{gone}{suffix}", params=query, follow_redirects=False)
        assert moved_price.status_code == 308, (suffix, moved_price.text)
        expected = f"/assets/{keep}{suffix}" + ("?limit=3" if query else "")
        assert moved_price.headers["location"] == expected
    asset = client.get(f"/assets/{gone}").json()
    assert asset["asset_id"] == keep
    by_key = {(m["source"], m["source_asset_id"]): m for m in asset["members"]}
    assert by_key[ZZA]["linked_by"] == "new"
    assert by_key[ZZA]["decision"] is None
    joined = by_key[QQB]
    assert joined["linked_by"] == "human"
    assert joined["decision"]["audit_id"] == result["audit_id"]
    assert (joined["decision"]["actor"], joined["decision"]["action"]) == ("api:bob@ops", "merge")
    assert (
        client.get(f"/assets/{keep}/history", params={"source": "csv_weird"}).json()["meta"][
            "count"
        ]
        == 2
    )

    audit = client.get("/identity/audit", params={"asset_id": gone}).json()
    assert audit["meta"]["total"] == 1
    (entry,) = audit["data"]
    assert (entry["id"], entry["actor"], entry["reason"]) == (
        result["audit_id"],
        "api:bob@ops",
        "one coin",
    )
    assert entry["before"]["assets"][gone]["history_rows"] == 2

    # The removed id is refused as a target, naming where it went.
    again = client.post("/identity/merge", json=_merge(keep, gone), headers=ADMIN)
    assert_problem(again, 404, mentions=f"merged into {keep}")


def test_refusals_are_problem_documents_and_write_nothing(
    client: TestClient, engine: Engine, curated: Settings
) -> None:
    split_asset, dupe = asset_of(engine, SPL_CSV), asset_of(engine, ("csv", "dup-dupe-coin"))
    before = snapshot(engine)
    conflict = client.post("/identity/merge", json=_merge(split_asset, dupe), headers=ADMIN)
    body = assert_problem(conflict, 409, mentions="split one of them out first")
    assert body["type"].endswith("identity-conflict")
    assert_problem(
        client.post("/identity/merge", json=_merge(split_asset, "nope"), headers=ADMIN),
        404,
        mentions="no asset nope",
    )
    assert_problem(
        client.post("/identity/merge", json=_merge(split_asset, split_asset), headers=ADMIN),
        400,
        mentions="itself",
    )
    assert_problem(
        client.post("/identity/merge", json=_merge(split_asset, dupe, reason=" "), headers=ADMIN),
        400,
        mentions="reason is required",
    )
    assert_problem(client.post("/identity/merge", json={"into": split_asset}, headers=ADMIN), 422)
    assert_problem(
        client.post(
            "/identity/merge",
            json=_merge(split_asset, dupe),
            headers={**ADMIN, "X-Actor": "x" * 65},
        ),
        400,
        mentions="X-Actor",
    )
    only = {
        "asset_id": asset_of(engine, SOLO),
        "source": "csv",
        "source_asset_id": SOLO[1],
        "reason": "x",
    }
    assert_problem(
        client.post("/identity/split", json=only, headers=ADMIN), 409, mentions="only member"
    )
    bad_source = {"source": "bogus", "source_asset_id": "x", "asset_id": split_asset, "reason": "x"}
    assert_problem(client.post("/identity/pin", json=bad_source, headers=ADMIN), 422)
    assert_problem(
        client.post("/identity/reviews/csv/nope/accept", json={"reason": "x"}, headers=ADMIN), 404
    )
    assert snapshot(engine) == before
    assert rows(engine, schema.identity_audit) == []


def test_split_pin_and_reviews_over_http(
    client: TestClient, engine: Engine, curated: Settings
) -> None:
    shared = asset_of(engine, SPL_CSV)
    split = client.post(
        "/identity/split",
        json={
            "asset_id": shared,
            "source": "csv_weird",
            "source_asset_id": SPL_WEIRD[1],
            "reason": "not the same",
        },
        headers=ADMIN,
    )
    assert split.status_code == 200, split.text
    apart = split.json()["asset_id"]
    assert members(engine, apart) == {SPL_WEIRD}
    assert {r.asset_id for r in history(engine, key=SPL_WEIRD)} == {apart}
    assert client.get(f"/assets/{apart}").json()["members"][0]["decision"]["action"] == "split"

    solo = asset_of(engine, SOLO)
    pin = client.post(
        "/identity/pin",
        json={
            "source": "csv_weird",
            "source_asset_id": "later-coin",
            "asset_id": solo,
            "reason": "known",
        },
        headers=ADMIN,
    )
    assert pin.status_code == 200, pin.text
    pins = client.get("/identity/pins", params={"asset_id": solo}).json()
    assert [(p["source_asset_id"], p["action"], p["actor"]) for p in pins["data"]] == [
        ("later-coin", "pin", "api:admin-key")
    ]

    reviews = client.get("/identity/reviews").json()
    assert [(r["source"], r["source_asset_id"]) for r in reviews["data"]] == [DUP_LOSER]
    path = f"/identity/reviews/{DUP_LOSER[0]}/{DUP_LOSER[1]}"
    # solo is pinned for csv_weird:later-coin now: it cannot take this one.
    assert_problem(
        client.post(f"{path}/accept", json={"asset_id": solo, "reason": "x"}, headers=ADMIN),
        409,
        mentions="pinned for csv_weird:later-coin",
    )
    rejected = client.post(f"{path}/reject", json={"reason": "a fork"}, headers=ADMIN)
    assert rejected.status_code == 200, rejected.text
    assert client.get("/identity/reviews").json()["data"] == []
    decided = client.get("/identity/reviews", params={"all": "true"}).json()["data"]
    assert [(r["status"], r["decided_by"], r["audit_id"]) for r in decided] == [
        ("rejected", "api:admin-key", rejected.json()["audit_id"])
    ]
    assert_problem(
        client.post(f"{path}/accept", json={"reason": "x"}, headers=ADMIN),
        409,
        mentions="was rejected",
    )
    actions = [a["action"] for a in client.get("/identity/audit").json()["data"]]
    assert actions == ["reject", "pin", "split"]
