"""Reads and writes of canonical identity inside a batch's transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.db.schema import asset_sources, assets
from kasparro.identity.model import CanonicalAsset, Lookup, SourceAsset
from kasparro.load.sql import id_chunks, in_list

# Ids asked about per new asset in the first round: just the base, which is free for nearly
# every new asset; asking about suffixes up front quadrupled the lookups for nothing.
PROBE_WINDOW = 1


def fetch_candidates(
    conn: Connection, lookup: Lookup, source: str, run_id: str
) -> list[CanonicalAsset]:
    """Canonical assets that share a symbol with, or hold a member named by, the lookup, and
    that have no member of `source` yet.

    An asset that holds one never takes another of the same source, so it is not a candidate:
    leaving it out keeps a large load of one source from reloading what it already linked.
    Two cheap tests rule most of those out before the membership lookup: a member row of
    `source`, and an asset created by this run (a run is one source, and an asset is created
    together with the member it was created for).
    """
    asset_ids: set[str] = set()
    symbols = sorted(lookup.symbols)
    member = asset_sources.alias("member")

    def free_of_source(asset_id: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
        return ~sa.exists().where(member.c.asset_id == asset_id, member.c.source == source)

    for part in id_chunks(conn, symbols):
        # The asset's own ticker, or any of its members' (one round trip for both).
        by_symbol = sa.union(
            sa.select(assets.c.asset_id).where(
                in_list(conn, assets.c.symbol, part),
                assets.c.created_run_id != run_id,
                free_of_source(assets.c.asset_id),
            ),
            sa.select(asset_sources.c.asset_id).where(
                in_list(conn, asset_sources.c.symbol, part),
                asset_sources.c.source != source,
                free_of_source(asset_sources.c.asset_id),
            ),
        )
        asset_ids.update(conn.scalars(by_symbol))
    by_source: dict[str, list[str]] = defaultdict(list)
    for key_source, source_asset_id in sorted(lookup.member_keys):
        by_source[key_source].append(source_asset_id)
    for member_source, ids in by_source.items():
        if member_source == source:  # its asset holds a member of `source`: never a candidate
            continue
        for part in id_chunks(conn, ids):
            asset_ids.update(
                conn.scalars(
                    sa.select(asset_sources.c.asset_id).where(
                        asset_sources.c.source == member_source,
                        in_list(conn, asset_sources.c.source_asset_id, part),
                        free_of_source(asset_sources.c.asset_id),
                    )
                )
            )
    return load_assets(conn, asset_ids)


def load_assets(conn: Connection, asset_ids: Iterable[str]) -> list[CanonicalAsset]:
    ids = sorted(set(asset_ids))
    members: dict[str, list[SourceAsset]] = defaultdict(list)
    heads: dict[str, tuple[str, str]] = {}
    for part in id_chunks(conn, ids):
        for head in conn.execute(
            sa.select(assets.c.asset_id, assets.c.symbol, assets.c.name).where(
                in_list(conn, assets.c.asset_id, part)
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
            ).where(in_list(conn, asset_sources.c.asset_id, part))
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
    """A free asset_id for each base slug: the base itself, else `base-2`, `base-3`, ...

    Picks the smallest ids not known to be taken and asks the database about each pick and the
    suffixes after it, in one query; a pick that was asked about and not found is free. A base
    whose window was all taken gets a window four times wider in the next round, so a long run
    of taken suffixes costs a few indexed lookups, not one per suffix.
    """
    taken: set[str] = set()
    asked: set[str] = set()
    window: dict[str, int] = dict.fromkeys(bases, PROBE_WINDOW)
    while True:
        allocated = _smallest_free(bases, taken)
        probes: set[str] = set()
        for base, chosen in zip(bases, allocated, strict=True):
            if chosen in asked:
                continue
            n = 1 if chosen == base else int(chosen.rsplit("-", 1)[1])
            probes.add(chosen)
            probes.update(f"{base}-{k}" for k in range(n + 1, n + window[base]))
            window[base] *= 4
        if not probes:
            return allocated
        probes -= asked
        asked |= probes
        for part in id_chunks(conn, sorted(probes)):
            taken.update(
                conn.scalars(
                    sa.select(assets.c.asset_id).where(in_list(conn, assets.c.asset_id, part))
                )
            )


def _smallest_free(bases: list[str], taken: set[str]) -> list[str]:
    used = set(taken)
    allocated: list[str] = []
    for base in bases:
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}-{n}"
        used.add(candidate)
        allocated.append(candidate)
    return allocated
