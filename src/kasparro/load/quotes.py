"""Quotes in another asset, converted to USD in the load path (it needs the database).

An exchange observes pairs: BTC in USDT, ETH in EUR, SOL in BTC. Its normalizer (pure) keeps the
price and the volume in the quote asset and names it (`Observation.quote`); here, inside the
batch's transaction, each is multiplied by the quote asset's consensus reference price at the
observation's time. Nothing is assumed: a stablecoin is worth what its reference price says, and
when there is no fresh one the record is quarantined (`no_quote_price`), never guessed. A USD
pair carries no quote and is left as it is.

Which canonical asset a quote ticker is: the canonical assets with that ticker are taken in order
of how much the sources value them (the largest market capitalisation reported for each, then how
many sources list it); the first with a fresh reference price at the observation's time is used,
provided that price agrees within QUOTE_AGREEMENT with the newest reference price of the most
valued one (the USDT, not a token that borrowed the ticker: its price would not agree). An asset
an exchange created for its own ticker (exchanges publish no names) can so stand in for the
canonical one while that one's price is stale, and only at the same price.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from kasparro.consensus.store import latest_reference_price
from kasparro.db.schema import asset_sources, raw_payloads, reference_prices
from kasparro.load.sql import id_chunks, in_list
from kasparro.models import Observation, RawRecord, Rejection, canonical_json

# How old a quote asset's reference price may be at the observation's time: the consensus
# method's default freshness window (CONSENSUS_FRESHNESS_SECONDS).
QUOTE_PRICE_MAX_AGE = timedelta(seconds=900)
NO_QUOTE_PRICE = "no_quote_price"
# How far a stand-in's price may be from the most valued asset's newest one (2%).
QUOTE_AGREEMENT = 0.02
MAX_CANDIDATES = 5


def convert_quotes(
    conn: Connection,
    source: str,
    records: Sequence[Observation],
    max_age: timedelta = QUOTE_PRICE_MAX_AGE,
) -> tuple[list[Observation], list[Rejection]]:
    """Every record in USD, and the rejections of those that cannot be converted (with their
    stored raw payload, for the quarantine). Records already in USD pass untouched."""
    if all(r.quote is None for r in records):
        return list(records), []
    candidates: dict[str, list[str]] = {}
    rates: dict[tuple[str, datetime], float | None] = {}
    converted: list[Observation] = []
    refused: list[tuple[Observation, str]] = []
    for record in records:
        quote = record.quote
        if quote is None:
            converted.append(record)
            continue
        if quote not in candidates:
            candidates[quote] = quote_candidates(conn, quote)
        key = (quote, record.observed_at)
        if key not in rates:
            rates[key] = quote_rate(conn, candidates[quote], record.observed_at, max_age)
        rate = rates[key]
        if rate is None:
            refused.append(
                (
                    record,
                    f"quote {quote}: no agreed reference price within "
                    f"{int(max_age.total_seconds())} s before {record.observed_at.isoformat()} "
                    f"(candidates: {', '.join(candidates[quote][:3]) or 'none'})",
                )
            )
            continue
        converted.append(
            record._replace(
                price_usd=record.price_usd * rate,
                market_cap_usd=_times(record.market_cap_usd, rate),
                volume_24h_usd=_times(record.volume_24h_usd, rate),
                quote=None,
            )
        )
    return converted, _rejections(conn, source, refused)


def quote_candidates(conn: Connection, quote: str) -> list[str]:
    """The canonical assets with this ticker, the most valued first."""
    return [
        str(asset_id)
        for asset_id in conn.scalars(
            sa.select(asset_sources.c.asset_id)
            .where(asset_sources.c.symbol == quote.upper())
            .group_by(asset_sources.c.asset_id)
            .order_by(
                sa.func.coalesce(sa.func.max(asset_sources.c.market_cap_usd), 0).desc(),
                sa.func.count().desc(),
                asset_sources.c.asset_id,
            )
            .limit(MAX_CANDIDATES)
        )
    ]


def quote_rate(
    conn: Connection, candidates: Sequence[str], at: datetime, max_age: timedelta
) -> float | None:
    """The USD price of a quote at `at` (the module docstring says whose), or None."""
    if not candidates:
        return None
    most_valued = candidates[0]
    anchor = latest_reference_price(conn, most_valued, at, max_age)
    if anchor is not None:
        return anchor
    newest = _newest_reference_price(conn, most_valued)
    if newest is None:
        return None
    for asset_id in candidates[1:]:
        rate = latest_reference_price(conn, asset_id, at, max_age)
        if rate is not None and abs(rate / newest - 1) <= QUOTE_AGREEMENT:
            return rate
    return None


def _newest_reference_price(conn: Connection, asset_id: str) -> float | None:
    price = conn.scalar(
        sa.select(reference_prices.c.price_usd)
        .where(reference_prices.c.asset_id == asset_id, reference_prices.c.price_usd.is_not(None))
        .order_by(reference_prices.c.as_of.desc())
        .limit(1)
    )
    return float(price) if price is not None else None


def _times(amount: float | None, rate: float) -> float | None:
    return amount * rate if amount is not None else None


def _rejections(
    conn: Connection, source: str, refused: Sequence[tuple[Observation, str]]
) -> list[Rejection]:
    """Rejections carrying each record's raw payload, read back from `raw_payloads` (the fetch
    process stored it before the batch reached the writer)."""
    if not refused:
        return []
    ids = sorted({r.raw_id for r, _ in refused})
    payloads: dict[str, Any] = {}
    for part in id_chunks(conn, ids):
        rows = conn.execute(
            sa.select(raw_payloads.c.raw_id, raw_payloads.c.payload).where(
                in_list(conn, raw_payloads.c.raw_id, part)
            )
        )
        payloads.update({str(raw_id): payload for raw_id, payload in rows})
    rejections = []
    for record, reason in refused:
        stored = payloads.get(record.raw_id)
        payload = stored if isinstance(stored, dict) else {"payload": stored}
        raw = RawRecord(source, payload, record.raw_id, canonical_json(payload))
        rejections.append(
            Rejection(
                raw=raw, reason=reason, source_asset_id=record.source_asset_id, code=NO_QUOTE_PRICE
            )
        )
    return rejections
