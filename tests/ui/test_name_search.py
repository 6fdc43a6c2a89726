"""The console's name search: names starting with the text, case-insensitively, in the order of
the index on lower(name) (migration 0008), equal to the plain reading on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.api.ui import queries
from kasparro.db.schema import assets

NAMES = [
    "Bitcoin", "bitcoin cash", "BitDAO", "Bit%coin", "Bit_coin", "Bits", "Bit", "bit\U0010ffffx",
    "Wrapped Bitcoin", "Ethereum", "ether.fi", "Zcash", "Ab", "aB", "a", "Éclair", "éclair", "10x",
]  # fmt: skip


def test_names_starting_with_the_text_in_code_point_order(engine: Engine) -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(assets),
            [
                {
                    "asset_id": f"a{n:03d}",
                    "symbol": None,
                    "name": name,
                    "created_at": now,
                    "created_run_id": "r",
                }
                for n, name in enumerate(NAMES)
            ],
        )
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"

        def lower(text: str) -> str:  # SQLite's lower() changes ASCII letters only
            return text.lower() if postgres else text.translate(queries.SQLITE_LOWER)

        for text in ("bit", "BIT", "bit%", "bit_", "bit\U0010ffff", "a", "é", "É", "e", "zz", "1"):
            expected = sorted(
                (lower(name), f"a{n:03d}")
                for n, name in enumerate(NAMES)
                if lower(name).startswith(lower(text))
            )
            found = queries.find_assets(conn, name_start=text, limit=100)
            assert [(lower(h["name"]), h["asset_id"]) for h in found] == expected, text
        assert len(queries.find_assets(conn, name_start="bit", limit=3)) == 3
        if postgres:  # the order above is the index's: code points, whatever the locale
            definition = conn.scalar(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_assets_name_lower'")
            )
            assert definition is not None and 'COLLATE "C"' in definition
