"""The CSV reader against hostile files, without a database: half-written rows, resumed reads,
files that are no CSV at all, and rows that must be quarantined with the right reason while
every other row of their batch is read."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kasparro.etl.prepare import prepare
from kasparro.models import Rejection, UnifiedRecord
from kasparro.sources.base import BadPayload, Batch, Cursor
from kasparro.sources.csv_files import CONVENTIONS_KEY, CsvSource
from tests.helpers import settings_for

HEADER = "symbol,name,price_usd,market_cap_usd,volume_24h_usd,date\n"
BTC = "BTC,Bitcoin,80000,1600000000000,20000000000,2026-05-12\n"
ETH = "ETH,Ethereum,2300,277000000000,9000000000,2026-05-12\n"
SOL = "SOL,Solana,90,48000000000,3000000000,2026-05-12\n"
# Never settles within a test: a file just written is "still being written".
UNSETTLED = 3600.0


def _source(path: Path, *, settle: float = UNSETTLED, batch_size: int = 100) -> CsvSource:
    return CsvSource("csv", path, batch_size=batch_size, settle_seconds=settle)


def _fetch(source: CsvSource, cursor: Cursor | None = None) -> list[Batch]:
    return list(source.fetch(cursor))


def _normalized(source: CsvSource, batches: list[Batch]) -> list[UnifiedRecord | Rejection]:
    return [source.normalize(raw) for batch in batches for raw in batch.records]


def _symbols(source: CsvSource, batches: list[Batch]) -> list[str]:
    return [raw.payload["row"]["symbol"] for batch in batches for raw in batch.records]


def _age(path: Path, seconds: float) -> None:
    """Date the file's last change `seconds` back (instead of waiting)."""
    when = path.stat().st_mtime - seconds
    os.utime(path, (when, when))


# --- a last line still being written -------------------------------------------------------------


def test_an_unterminated_last_line_is_not_read_until_completed_and_then_read_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "prices.csv"
    complete = HEADER + BTC + ETH
    path.write_text(complete + "SOL,Solana,9")  # the writer is mid-row
    source = _source(path)

    batches = _fetch(source)
    assert _symbols(source, batches) == ["BTC", "ETH"]
    assert not any(batch.rejections for batch in batches)
    cursor = batches[-1].cursor
    assert cursor["offset"] == len(complete.encode())  # stops before the partial row

    with path.open("a") as handle:
        handle.write("0,48000000000,3000000000,2026-05-12\n")
    resumed = _fetch(source, cursor)
    [record] = _normalized(source, resumed)
    assert isinstance(record, UnifiedRecord), record
    assert (record.symbol, record.price_usd, record.market_cap_usd) == ("SOL", 90.0, 48e9)
    assert resumed[-1].cursor["offset"] == path.stat().st_size


@pytest.mark.parametrize("settle", [0.0, UNSETTLED])
def test_a_settled_unterminated_line_is_read_but_never_committed_past(
    tmp_path: Path, settle: float
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + BTC + SOL.rstrip("\n"))
    if settle:
        _age(path, 2 * UNSETTLED)  # unchanged for longer than settle_seconds
    source = _source(path, settle=settle)

    batches = _fetch(source)
    assert _symbols(source, batches) == ["BTC", "SOL"]
    assert batches[-1].cursor["offset"] == len((HEADER + BTC).encode())
    # The next run reads it again (loading is idempotent) until its newline arrives.
    again = _fetch(source, batches[-1].cursor)
    assert _symbols(source, again) == ["SOL"]
    assert again[-1].cursor["offset"] == len((HEADER + BTC).encode())


def test_a_quoted_field_open_at_the_end_of_the_file_is_not_committed_past(
    tmp_path: Path,
) -> None:
    # Every line ends in a newline, but the last record is not finished: a quoted name with a
    # line break, of which only the first line is written yet.
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + BTC + 'ETH,"Ether\n')
    source = _source(path)

    batches = _fetch(source)
    assert _symbols(source, batches) == ["BTC"]
    assert not any(batch.rejections for batch in batches)
    assert batches[-1].cursor["offset"] == len((HEADER + BTC).encode())

    with path.open("a") as handle:
        handle.write('eum",2300,277000000000,9000000000,2026-05-12\n' + SOL)
    resumed = _fetch(source, batches[-1].cursor)
    assert not any(batch.rejections for batch in resumed)
    names = [raw.payload["row"]["name"] for batch in resumed for raw in batch.records]
    assert names == ["Ether\neum", "Solana"]  # the record whole, then the next
    first, second = _normalized(source, resumed)
    assert isinstance(first, Rejection) and first.code == "unstorable_text"  # a newline in a name
    assert isinstance(second, UnifiedRecord)
    assert resumed[-1].cursor["offset"] == path.stat().st_size


# --- resuming keeps what the rows before the checkpoint proved -----------------------------------


def _evidence_file(path: Path) -> Path:
    rows = [
        'A,Alpha,"0,5",1,1,2026-05-12\n',  # proves the comma convention
        'B,Beta,"1,234",1,1,2026-05-12\n',  # ambiguous: 1.234 here
        'C,Gamma,"2,25",1,1,2026-05-12\n',  # proves it again
        'D,Delta,"1.234,5",1,1,2026-05-12\n',
        'E,Epsilon,"9,876",1,1,2026-05-12\n',  # ambiguous
    ]
    path.write_text(HEADER + "".join(rows))
    return path


def _conventions(batches: list[Batch]) -> dict[str, Any]:
    return {
        raw.payload["row"]["symbol"]: raw.payload.get(CONVENTIONS_KEY)
        for batch in batches
        for raw in batch.records
    }


def test_a_resumed_read_counts_each_rows_evidence_once(tmp_path: Path) -> None:
    source = _source(_evidence_file(tmp_path / "prices.csv"), batch_size=2)
    whole = _fetch(source)
    assert len(whole) == 3
    assert whole[-1].cursor["evidence"]["price_usd"] == [0, 3]

    # Resumed after the first batch: the same conventions, the same final evidence.
    resumed = _fetch(source, whole[0].cursor)
    assert whole[0].cursor["evidence"]["price_usd"] == [0, 1]
    assert resumed[-1].cursor["evidence"] == whole[-1].cursor["evidence"]
    assert _conventions(resumed) == {s: c for s, c in _conventions(whole).items() if s > "B"}
    assert _conventions(whole)["E"] == {"price_usd": "comma"}

    # Resumed at the end, then again after a row is appended: counted once each time.
    assert _fetch(source, whole[-1].cursor) == []
    with source.path.open("a") as handle:
        handle.write('F,Phi,"3,5",1,1,2026-05-12\n')
    [appended] = _fetch(source, whole[-1].cursor)
    assert appended.cursor["evidence"]["price_usd"] == [0, 4]


def test_a_row_not_committed_past_adds_no_evidence_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + 'A,Alpha,"0,5",1,1,2026-05-12\n' + 'B,Beta,"2,5",1,1,2026-05-12')
    source = _source(path, settle=0)
    batches = _fetch(source)
    assert _symbols(source, batches) == ["A", "B"]
    assert batches[-1].cursor["evidence"]["price_usd"] == [0, 1]  # B is read again next time
    again = _fetch(source, batches[-1].cursor)
    assert again[-1].cursor["evidence"]["price_usd"] == [0, 1]
    with path.open("a") as handle:
        handle.write("\n")
    completed = _fetch(source, again[-1].cursor)
    assert completed[-1].cursor["evidence"]["price_usd"] == [0, 2]


def test_what_rows_before_the_checkpoint_proved_decides_rows_appended_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + 'A,Alpha,"0,5",1,1,2026-05-12\n')
    source = _source(path)
    [first] = _fetch(source)
    with path.open("a") as handle:
        handle.write('B,Beta,"1,234",1,1,2026-05-12\n')
    resumed = _fetch(source, first.cursor)
    [record] = _normalized(source, resumed)
    assert isinstance(record, UnifiedRecord), record
    assert record.price_usd == 1.234

    # Without that evidence the same row is not guessed.
    fresh = tmp_path / "fresh.csv"
    fresh.write_text(HEADER + 'B,Beta,"1,234",1,1,2026-05-12\n')
    other = _source(fresh)
    [refused] = _normalized(other, _fetch(other))
    assert isinstance(refused, Rejection) and refused.code == "ambiguous_number"


# --- files that are not CSV ----------------------------------------------------------------------


def test_a_directory_is_refused_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "prices.csv"
    folder.mkdir()
    with pytest.raises(BadPayload, match=str(folder)):
        _fetch(_source(folder))


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + bytes(range(256)),
        "symbol,name,price_usd,date\n".encode("utf-16"),
        b"\xff\xfe\xfd\n" + BTC.encode(),
    ],
)
def test_a_binary_file_is_refused_by_name(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(content)
    with pytest.raises(BadPayload, match=str(path)):
        _fetch(_source(path))


@pytest.mark.parametrize(
    "header", ["\x00\x00\x00\n", "ticker,price\n", "symbol,name,price_usd,date\rBTC,B,1,2026\n"]
)
def test_a_header_that_cannot_be_read_is_refused_by_name(tmp_path: Path, header: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(header, newline="")
    with pytest.raises(BadPayload, match=str(path)):
        _fetch(_source(path))


# --- rows quarantined with their reason, the rest read -------------------------------------------


def _rows(tmp_path: Path, *rows: bytes, settle: float = 0.0) -> tuple[CsvSource, list[Batch]]:
    path = tmp_path / "prices.csv"
    path.write_bytes(HEADER.encode() + b"".join(rows))
    source = _source(path, settle=settle)
    return source, _fetch(source)


def _row(symbol: str = "BTC", name: str = "Bitcoin", date: str = "2026-05-12") -> bytes:
    return f"{symbol},{name},80000,1600000000000,20000000000,{date}\n".encode(
        "utf-8", "surrogateescape"
    )


@pytest.mark.parametrize(
    "row",
    [
        _row(name="Bit\x00coin"),
        _row(name="Bit\x1b[31mcoin"),
        _row(name="Bit\x7fcoin"),
        _row(name="Bit\u0085coin"),
        _row(name="Bit\x07coin"),
        _row(symbol="B\x00TC"),
        _row(name='"Bit\rcoin"'),  # quoted: a CR inside the field
        b"BTC,Bit\xffcoin,80000,1,1,2026-05-12\n",  # not UTF-8: a lone surrogate
        b"BTC,Bitcoin\xc3,80000,1,1,2026-05-12\n",  # a cut multi-byte character
        b"B\xedTC,Bitcoin,80000,1,1,2026-05-12\n",
    ],
)
def test_unstorable_text_is_quarantined_and_the_other_rows_are_read(
    tmp_path: Path, row: bytes
) -> None:
    source, batches = _rows(tmp_path, _row("ETH", "Ethereum"), row, _row("SOL", "Solana"))
    first, bad, last = _normalized(source, batches)
    assert isinstance(bad, Rejection), bad
    assert bad.code == "unstorable_text", bad.reason
    assert isinstance(first, UnifiedRecord) and isinstance(last, UnifiedRecord)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (_row(symbol="X" * 65), "symbol"),
        (_row(name="N" * 501), "name"),
        (_row(symbol="X" * 60, name="N" * 200), "source_asset_id"),
    ],
)
def test_a_too_long_symbol_name_or_id_is_quarantined(
    tmp_path: Path, row: bytes, field: str
) -> None:
    source, batches = _rows(tmp_path, row, _row())
    bad, good = _normalized(source, batches)
    assert isinstance(bad, Rejection), bad
    assert bad.code == "too_long", bad.reason
    assert field in bad.reason
    assert isinstance(good, UnifiedRecord)


def test_dates_before_bitcoin_are_implausible(tmp_path: Path) -> None:
    source, batches = _rows(
        tmp_path, _row(date="2008-12-31"), _row(date="2009-01-02"), _row(date="2009-01-03")
    )
    old, older, first_day = _normalized(source, batches)
    for bad in (old, older):
        assert isinstance(bad, Rejection) and bad.code == "implausible_timestamp", bad
    assert isinstance(first_day, UnifiedRecord)


def test_a_date_in_the_future_is_quarantined_when_prepared(tmp_path: Path) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    in_a_week = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    source, [batch] = _rows(
        tmp_path, _row("AAA", date="2099-01-01"), _row("BBB", date=in_a_week), _row("CCC")
    )
    prepared = prepare(source, batch, settings_for("sqlite://"))
    assert [r.code for r in prepared.rejections] == ["future_timestamp", "future_timestamp"]
    assert "2099-01-01" in prepared.rejections[0].reason
    assert [r.symbol for r in prepared.records] == ["CCC"]

    # A day's tolerance admits tomorrow's date (midnight is less than a day ahead).
    source, [batch] = _rows(tmp_path, _row("AAA", date=tomorrow))
    lenient = settings_for("sqlite://", future_tolerance_seconds=86_400)
    assert [r.symbol for r in prepare(source, batch, lenient).records] == ["AAA"]


@pytest.mark.parametrize(
    "row",
    [
        b"BTC,Bitcoin,80000\n",
        b"BTC,Bitcoin,80000,1,1,2026-05-12,extra\n",
        b"BTC,Bit\rcoin,80000,1,1,2026-05-12\n",  # a stray CR: csv refuses the line
    ],
)
def test_a_malformed_line_is_quarantined_and_the_other_rows_are_read(
    tmp_path: Path, row: bytes
) -> None:
    source, batches = _rows(tmp_path, _row("ETH", "Ethereum"), row, _row("SOL", "Solana"))
    [rejection] = [r for batch in batches for r in batch.rejections]
    assert rejection.code == "malformed_line"
    assert rejection.raw.payload["line_number"] == 3
    assert "line 3" in rejection.reason
    assert _symbols(source, batches) == ["ETH", "SOL"]
    assert batches[-1].cursor["offset"] == source.path.stat().st_size


def test_one_bad_row_of_each_kind_never_stops_the_others_in_its_batch(tmp_path: Path) -> None:
    bad_rows = [
        b"BTC,Bitcoin,80000\n",  # malformed_line
        b"BT\rC,Bitcoin,1,1,1,2026-05-12\n",  # malformed_line (csv error)
        _row(name="Bit\x00coin"),  # unstorable_text
        b"BTC,Bit\xffcoin,1,1,1,2026-05-12\n",  # unstorable_text
        _row(symbol="X" * 65),  # too_long
        _row(date="2008-06-01"),  # implausible_timestamp
        _row(date="not a date"),  # bad_timestamp
        b'BTC,Bitcoin,"1,234",1,1,2026-05-12\n',  # ambiguous_number
        b"BTC,Bitcoin,abc,1,1,2026-05-12\n",  # not_a_number
        b"BTC,Bitcoin,N/A,1,1,2026-05-12\n",  # missing_price
        b"BTC,Bitcoin,-5,1,1,2026-05-12\n",  # invalid_value
    ]
    good = [_row(f"G{i}", f"Good {i}") for i in range(len(bad_rows) + 1)]
    interleaved = [row for pair in zip(good, bad_rows, strict=False) for row in pair]
    source, [batch] = _rows(tmp_path, *interleaved, good[-1])
    prepared = prepare(source, batch, settings_for("sqlite://"))
    assert sorted(r.symbol for r in prepared.records) == sorted(f"G{i}" for i in range(len(good)))
    assert sorted(r.code for r in prepared.rejections) == sorted(
        [
            "malformed_line",
            "malformed_line",
            "unstorable_text",
            "unstorable_text",
            "too_long",
            "implausible_timestamp",
            "bad_timestamp",
            "ambiguous_number",
            "not_a_number",
            "missing_price",
            "invalid_value",
        ]
    )
