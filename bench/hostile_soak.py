"""Hostile soak: random hostile records injected into the fakes' responses and a CSV, run after
run; counts what a user would care about.

Each epoch moves the fakes' clock on (new prices), injects hostile items of random classes
(`kasparro.fakes.hostile`) at random into each vendor's response and hostile lines into the CSV,
and runs every source. After each epoch: every value served must be the fake's (wrong values
served), every good record must be in history (good records lost), every hostile record must be
in quarantine with a reason (hostile records not quarantined), and no 8-character piece of a
configured secret may appear in the logs, the runs, quarantine or the API's answers.

    python -m bench.hostile_soak [--epochs 6] [--per-epoch 40] [--seed 3] [--sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bench.common import scratch_postgres
from kasparro.api.app import create_app
from kasparro.config import Settings
from kasparro.db import schema
from kasparro.db.engine import create_db_engine
from kasparro.db.migrate import upgrade
from kasparro.etl.runner import run_source
from kasparro.fakes.hostile import CSV_CASES, CSV_HEADER, random_hostile
from kasparro.fakes.server import FakeUpstreams
from kasparro.logging import configure_logging
from kasparro.models import RawRecord, UnifiedRecord
from kasparro.sources.registry import build_source

COINS = 600
CG_KEY = "cg-soak-secret-7f3a9c21d4"
ADMIN_KEY = "admin-soak-secret-88e1b0c6f2a4"
SECRETS = (CG_KEY, ADMIN_KEY)


@contextlib.contextmanager
def _database(sqlite: bool) -> Iterator[str]:
    if sqlite:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/soak.db"
    else:
        with scratch_postgres("kasparro_hostile_soak") as url:
            yield url


def _good(vendor: str, items: list[dict[str, Any]], settings: Settings) -> dict[str, float]:
    normalize = build_source(settings, vendor).normalize
    records = [normalize(RawRecord.of(vendor, item)) for item in items]
    return {r.source_asset_id: r.price_usd for r in records if isinstance(r, UnifiedRecord)}


def _pieces(text: str) -> int:
    return sum(1 for secret in SECRETS for i in range(len(secret) - 7) if secret[i : i + 8] in text)


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile_soak")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--per-epoch", type=int, default=40, help="hostile records per source")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    logs = io.StringIO()
    totals = dict.fromkeys(
        ("hostile", "quarantined", "not_quarantined", "wrong", "lost", "pieces", "failed"), 0
    )
    refused_anyway = 0  # the fake universe's own records that validation refuses
    with (
        _database(args.sqlite) as url,
        tempfile.TemporaryDirectory() as folder,
        FakeUpstreams(coins=COINS, coingecko_plan="pro", coingecko_key=CG_KEY) as fake,
        contextlib.redirect_stderr(logs),
    ):
        configure_logging("INFO", "json")
        upgrade(url)
        engine = create_db_engine(url)
        csv_path = Path(folder) / "prices.csv"
        csv_path.write_bytes(CSV_HEADER)
        settings = Settings(
            _env_file=None,
            database_url=url,
            coingecko_base_url=fake.coingecko_url,
            coingecko_api_plan="pro",
            coingecko_api_key=CG_KEY,
            coingecko_per_page=100,
            coingecko_rate_limit_per_minute=100_000,
            coinpaprika_base_url=fake.coinpaprika_url,
            coinpaprika_rate_limit_per_second=1000,
            csv_path=csv_path,
            csv_weird_enabled=False,
            csv_settle_seconds=0,
            admin_api_key=ADMIN_KEY,
            etl_batch_size=150,
        )
        for epoch in range(args.epochs):
            fake.universe.advance()
            expected: dict[str, dict[str, float]] = {}
            for vendor in ("coingecko", "coinpaprika"):
                items = (
                    fake.universe.coingecko_items()
                    if vendor == "coingecko"
                    else fake.universe.coinpaprika_items()
                )
                expected[vendor] = _good(vendor, items, settings)
                refused_anyway += len(items) - len(expected[vendor])
                hostile = list(random_hostile(vendor, items, args.per_epoch, rng))
                for h in hostile:  # unique per epoch, so each is a record of its own
                    h_body = h.body.replace(b'"soak', f'"e{epoch}soak'.encode(), 1)
                    fake.state.extra_items.setdefault(vendor, []).append(h_body)
                totals["hostile"] += len(hostile)
            day = f"2026-02-{epoch + 1:02d}"
            lines = [f"G{n},Good {n},{n + 1}.5,1000,10,{day}\n".encode() for n in range(50)]
            picked = [rng.choice(CSV_CASES)[1] for _ in range(args.per_epoch)]
            picked = [p.replace(b",", f"{epoch}{n},".encode(), 1) for n, p in enumerate(picked)]
            lines += picked
            rng.shuffle(lines)
            with csv_path.open("ab") as handle:
                handle.write(b"".join(lines))
            totals["hostile"] += len(picked)
            expected["csv"] = {f"g{n}-good-{n}": n + 1.5 for n in range(50)}
            for source in ("coingecko", "coinpaprika", "csv"):
                result = run_source(engine, settings, source, trigger="soak")
                totals["failed"] += result.status == "failed"
            fake.state.extra_items.clear()
            with engine.connect() as conn:
                served = {
                    (s, said): (price, observed)
                    for s, said, price, observed in conn.execute(
                        sa.select(
                            schema.asset_sources.c.source,
                            schema.asset_sources.c.source_asset_id,
                            schema.asset_sources.c.price_usd,
                            schema.asset_sources.c.observed_at,
                        )
                    )
                }
                for source, values in expected.items():
                    for said, price in values.items():
                        got = served.get((source, said))
                        if got is None:
                            totals["lost"] += 1
                        elif got[0] != price:
                            totals["wrong"] += 1
                    # Anything else served for this source is a hostile record that got in.
                    totals["wrong"] += sum(
                        1 for s, said in served if s == source and said not in values
                    )
                rows = conn.scalar(sa.select(sa.func.count()).select_from(schema.quarantine))
                totals["quarantined"] = (rows or 0) - refused_anyway
                totals["not_quarantined"] = totals["hostile"] - totals["quarantined"]
            with engine.connect() as conn:
                by_source: dict[str, int] = dict(
                    conn.execute(
                        sa.select(schema.quarantine.c.source, sa.func.count()).group_by(
                            schema.quarantine.c.source
                        )
                    ).all()
                )
            print(f"epoch {epoch + 1}: {totals} {by_source}", file=sys.__stdout__, flush=True)
        with TestClient(create_app(settings, engine)) as client:
            answers = [client.get(p).text for p in ("/health", "/runs", "/stats", "/drift")]
        with engine.connect() as conn:
            stored = [
                str(row)
                for table in (schema.etl_runs, schema.quarantine)
                for row in conn.execute(sa.select(table))
            ]
    totals["pieces"] = _pieces(logs.getvalue() + "".join(answers) + "".join(stored))
    print(
        f"hostile records injected: {totals['hostile']}; quarantined: {totals['quarantined']}"
        f" (not quarantined: {totals['not_quarantined']}); wrong values served: "
        f"{totals['wrong']}; good records lost: {totals['lost']}; "
        f"secret pieces seen: {totals['pieces']}; runs failed: {totals['failed']}",
        file=sys.__stdout__,
    )
    return totals


if __name__ == "__main__":
    outcome = main(sys.argv[1:])
    bad = ("wrong", "lost", "pieces", "not_quarantined", "failed")
    sys.exit(1 if any(outcome[k] for k in bad) else 0)
