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
    """Canonical assets with a member (of another source) that shares a blocking key with the
    lookup, or that the lookup names, and that have no member of `source` yet.

    Blocking keys (`kasparro.identity.evidence.blocking_keys`) are indexed columns of
    `asset_sources`: the ticker without `$` or chain suffix, and the name key and id stem, each
    matched with both (a name "Binance Coin" meets an id `binancecoin`). An asset that holds a
    member of `source` never takes another, so it is not a candidate: leaving it out keeps a
    large load of one source from reloading what it already linked.
    """
    asset_ids: set[str] = set()
    links = asset_sources.c
    searches = [(links.ticker_key, sorted(lookup.ticker_keys))]
    texts = sorted(lookup.text_keys)
    searches += [(links.name_key, texts), (links.id_key, texts)]
    for column, keys in searches:
        for part in id_chunks(conn, keys):
            asset_ids.update(
                conn.scalars(
                    sa.select(links.asset_id)
                    .where(in_list(conn, column, part), links.source != source)
                    .distinct()
                )
            )
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
                    )
                )
            )
    return load_assets(conn, asset_ids - _holding(conn, asset_ids, source))


def _holding(conn: Connection, asset_ids: Iterable[str], source: str) -> set[str]:
    """Which of these assets hold a member of `source`.

    Probes by asset_id only, the source compared here: statistics taken before `source` had
    rows estimate `source = ...` at one row, and the planner then read the whole id list again
    for every row of the source (seconds per batch in a first load)."""
    held: set[str] = set()
    links = asset_sources.c
    for part in id_chunks(conn, sorted(asset_ids)):
        rows = conn.execute(
            sa.select(links.asset_id, links.source).where(in_list(conn, links.asset_id, part))
        )
        held.update(asset_id for asset_id, member_source in rows if member_source == source)
    return held


def load_assets(conn: Connection, asset_ids: Iterable[str]) -> list[CanonicalAsset]:
    ids = sorted(set(asset_ids))
    members: dict[str, list[SourceAsset]] = defaultdict(list)
    heads: dict[str, tuple[str | None, str]] = {}
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
                asset_sources.c.observed_at,
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
                    observed_at=row.observed_at,
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
