"""Reads and writes of canonical identity inside a batch's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.db.schema import asset_sources, assets
from kasparro.identity.model import CanonicalAsset, Lookup, SourceAsset
from kasparro.load.sql import chunks


def fetch_candidates(conn: Connection, lookup: Lookup) -> list[CanonicalAsset]:
    """Canonical assets that share a symbol with, or hold a member named by, the lookup."""
    asset_ids: set[str] = set()
    symbols = sorted(lookup.symbols)
    for part in chunks(symbols):
        asset_ids.update(
            conn.scalars(sa.select(assets.c.asset_id).where(assets.c.symbol.in_(part)))
        )
        asset_ids.update(
            conn.scalars(
                sa.select(asset_sources.c.asset_id).where(asset_sources.c.symbol.in_(part))
            )
        )
    keys = sorted(lookup.member_keys)
    for key_part in chunks(keys, 400):
        asset_ids.update(
            conn.scalars(
                sa.select(asset_sources.c.asset_id).where(
                    sa.tuple_(asset_sources.c.source, asset_sources.c.source_asset_id).in_(key_part)
                )
            )
        )
    return load_assets(conn, asset_ids)


def load_assets(conn: Connection, asset_ids: Iterable[str]) -> list[CanonicalAsset]:
    ids = sorted(set(asset_ids))
    members: dict[str, list[SourceAsset]] = defaultdict(list)
    heads: dict[str, tuple[str, str]] = {}
    for part in chunks(ids):
        for head in conn.execute(
            sa.select(assets.c.asset_id, assets.c.symbol, assets.c.name).where(
                assets.c.asset_id.in_(part)
            )
        ):
            heads[head.asset_id] = (head.symbol, head.name)
        for row in conn.execute(
            sa.select(
                asset_sources.c.asset_id,
                asset_sources.c.source,
                asset_sources.c.source_asset_id,
                asset_sources.c.symbol,
                asset_sources.c.name,
                asset_sources.c.price_usd,
                asset_sources.c.market_cap_usd,
            ).where(asset_sources.c.asset_id.in_(part))
        ):
            members[row.asset_id].append(
                SourceAsset(
                    source=row.source,
                    source_asset_id=row.source_asset_id,
                    symbol=row.symbol,
                    name=row.name,
                    price_usd=row.price_usd,
                    market_cap_usd=row.market_cap_usd,
                )
            )
    return [
        CanonicalAsset(
            asset_id=asset_id,
            symbol=symbol,
            name=name,
            members=tuple(sorted(members[asset_id], key=lambda m: m.key)),
        )
        for asset_id, (symbol, name) in sorted(heads.items())
    ]


def allocate_asset_ids(conn: Connection, bases: list[str]) -> list[str]:
    """A free asset_id for each base slug: the base itself, else `base-2`, `base-3`, ..."""
    taken: set[str] = set()
    for part in chunks(sorted(set(bases)), 300):
        clauses = [assets.c.asset_id == b for b in part] + [
            assets.c.asset_id.like(f"{b}-%") for b in part
        ]
        taken.update(conn.scalars(sa.select(assets.c.asset_id).where(sa.or_(*clauses))))
    allocated: list[str] = []
    for base in bases:
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        allocated.append(candidate)
    return allocated
