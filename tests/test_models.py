"""The records every source produces: content addresses and the loader's form of a record."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from kasparro.models import RawRecord, UnifiedRecord


def test_a_raw_record_is_addressed_by_its_content_whatever_the_key_order() -> None:
    first = RawRecord.of("coinpaprika", {"id": "btc-bitcoin", "quotes": {"USD": {"price": 1.5}}})
    second = RawRecord.of("coinpaprika", {"quotes": {"USD": {"price": 1.5}}, "id": "btc-bitcoin"})
    assert first.raw_id == second.raw_id and first.body == second.body
    assert orjson.loads(first.body) == first.payload
    # Same content from another source is another record.
    assert RawRecord.of("coingecko", first.payload).raw_id != first.raw_id


def test_an_observation_carries_every_field_of_the_record() -> None:
    record = UnifiedRecord(
        source="coingecko",
        source_asset_id="bitcoin",
        symbol="btc",
        name="Bitcoin",
        price_usd=97000.5,
        market_cap_usd=None,
        volume_24h_usd=1e9,
        observed_at=datetime(2026, 11, 23, 12, tzinfo=UTC),
        raw_id="a" * 64,
    )
    observation = record.observation()
    assert observation._asdict() == record.model_dump()
    assert list(observation._fields) == list(UnifiedRecord.model_fields)


def test_whitespace_around_text_is_stripped_and_control_characters_inside_refused() -> None:
    from kasparro.models import RawRecord
    from kasparro.sources.coingecko import normalize

    def item(name: str) -> RawRecord:
        return RawRecord.of(
            "coingecko",
            {
                "id": "foo",
                "symbol": "foo",
                "name": name,
                "current_price": 1.5,
                "last_updated": "2026-01-01T00:00:00Z",
            },
        )

    accepted = normalize(item("Foo Coin\r\n"))
    assert getattr(accepted, "name", None) == "Foo Coin"
    refused = normalize(item("Foo\nCoin"))
    assert getattr(refused, "code", None) == "unstorable_text"
