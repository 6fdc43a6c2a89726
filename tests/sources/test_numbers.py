"""The one number parser: both conventions, read with certainty or refused, never guessed.

The properties write a number in every way a person or spreadsheet writes it, in every
delimiter, run the file through the real CSV source, and require the value read back to be the
value written, or the record quarantined as `ambiguous_number`/`not_a_number`: never another.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kasparro.models import Rejection, UnifiedRecord
from kasparro.sources.csv_files import CsvSource
from kasparro.sources.numbers import Convention, Evidence, NumberError, parse_number, proves

POINT, COMMA = Convention.POINT, Convention.COMMA
REFUSED = {"ambiguous_number", "not_a_number"}
DELIMITERS = (",", ";", "\t", "|")
FIELDS = ("symbol", "name", "price_usd", "market_cap_usd", "volume_24h_usd", "date")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The form alone decides.
        ("42", 42.0),
        ("0,5", 0.5),
        ("0.5", 0.5),
        ("0,123", 0.123),
        ("0,001", 0.001),
        ("12,3456", 12.3456),
        ("12.3456", 12.3456),
        ("1,23", 1.23),
        (",5", 0.5),
        (".5", 0.5),
        ("1.234,56", 1234.56),
        ("1,234.56", 1234.56),
        ("1,234,567", 1234567.0),
        ("1.234.567", 1234567.0),
        ("1,234,567.891", 1234567.891),
        ("1.234.567,891", 1234567.891),
        # Currency, spaces and apostrophes between groups.
        ("$1,234.50", 1234.5),
        ("US$ 5", 5.0),
        ("5 USD", 5.0),
        ("USD 1.234,5", 1234.5),
        ("1 234,5", 1234.5),
        ("1\u00a0234\u00a0567.25", 1234567.25),
        ("1\u202f234,75", 1234.75),
        ("1'234.5", 1234.5),
        ("  7  ", 7.0),
        # Signs, before or after the currency.
        ("-5", -5.0),
        ("+5", 5.0),
        ("-$1,234.5", -1234.5),
        ("$-5", -5.0),
        ("- 5", -5.0),
        # Exponents: the mark before one is a decimal mark.
        ("1.5e-8", 1.5e-8),
        ("1,5e-8", 1.5e-8),
        ("2E3", 2000.0),
        ("1e5", 100000.0),
        # Absent.
        ("", None),
        ("   ", None),
        ("N/A", None),
        ("n/a", None),
        ("#N/A", None),
        ("null", None),
        ("-", None),
        ("NaN", None),
        (None, None),
    ],
)
def test_a_form_that_decides_reads_alike_in_both_conventions(
    text: str | None, expected: float | None
) -> None:
    assert parse_number(text) == expected
    assert parse_number(text, POINT) == expected
    assert parse_number(text, COMMA) == expected


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "1.2.3",
        "1,2,3",
        "1,23,456",  # Indian grouping: not a form we read
        "12,34.5",
        "1.234,5.6",
        "1,234.567,8",
        "1,234.",
        "5.",
        "0,123,456",
        "$$5",
        "--5",
        "+-5",
        "(5)",
        "€5",
        "inf",
        "Infinity",
        "0x1A",
        "1_000",
        "e5",
        "10 20",  # two numbers, or a typo: never 1020
        "1 2",
        "123 4567",
        "0.123 456",
        "1 234 5",
        "1\x002",
        "١٢٣",
    ],
)
def test_garbage_is_not_a_number(text: str) -> None:
    for convention in (None, POINT, COMMA):
        with pytest.raises(NumberError) as caught:
            parse_number(text, convention)
        assert caught.value.code == "not_a_number"
    assert proves(text) is None


@pytest.mark.parametrize(
    ("text", "as_point", "as_comma"),
    [
        ("1,234", 1234.0, 1.234),
        ("1.234", 1.234, 1234.0),
        ("$1,000", 1000.0, 1.0),
        ("-999.000", -999.0, -999000.0),
        ("12,345 USD", 12345.0, 12.345),
    ],
)
def test_a_form_both_conventions_read_is_refused_without_proof(
    text: str, as_point: float, as_comma: float
) -> None:
    with pytest.raises(NumberError) as caught:
        parse_number(text)
    assert caught.value.code == "ambiguous_number"
    assert parse_number(text, POINT) == as_point
    assert parse_number(text, COMMA) == as_comma
    assert proves(text) is None


def test_evidence_counts_what_each_value_proves_and_a_contradiction_proves_nothing() -> None:
    seen = Evidence()
    seen.add(["1,234", "N/A", None, "garbage", "42"])
    assert (seen.point, seen.comma, seen.convention) == (0, 0, None)
    seen.add(["0,5", "1.234,56"])
    assert (seen.point, seen.comma, seen.convention) == (0, 2, COMMA)
    assert seen.merge(Evidence(point=1)).convention is None
    assert Evidence(point=3).convention is POINT


# --- through the real CSV source -----------------------------------------------------------------


def _read_csv(text: str) -> list[UnifiedRecord | Rejection]:
    """Every record a CsvSource makes of `text`, normalized, in file order (no database)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prices.csv"
        path.write_text(text, encoding="utf-8", newline="")
        source = CsvSource("csv", path, batch_size=4, settle_seconds=0)
        out: list[UnifiedRecord | Rejection] = []
        for batch in source.fetch(None):
            assert not batch.rejections, [r.reason for r in batch.rejections]
            out.extend(source.normalize(raw) for raw in batch.records)
    return out


def _csv(delimiter: str, rows: list[list[str]], *, quote_all: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=delimiter,
        lineterminator="\n",
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(FIELDS)
    writer.writerows(rows)
    return buffer.getvalue()


def _row(i: int, price: str, market_cap: str = "", volume: str = "N/A") -> list[str]:
    return [f"C{i}", f"Coin {i}", price, market_cap, volume, "2026-05-12"]


@pytest.mark.parametrize(
    ("delimiter", "value", "expected"),
    [
        (";", "0,123", 0.123),  # not 123
        (",", "0,001", 0.001),  # quoted in a `,` file; not 1.0
        ("\t", "0,5", 0.5),
        ("|", "1.234,56", 1234.56),
        (",", "$1,234.50", 1234.5),
    ],
)
def test_the_issues_examples_read_as_written(delimiter: str, value: str, expected: float) -> None:
    text = _csv(delimiter, [_row(1, value)])
    if delimiter == ",":
        assert f'"{value}"' in text
    [record] = _read_csv(text)
    assert isinstance(record, UnifiedRecord), record
    assert record.price_usd == expected


def test_an_ambiguous_value_alone_in_its_file_is_quarantined() -> None:
    [record] = _read_csv(_csv(",", [_row(1, "1,234")]))
    assert isinstance(record, Rejection)
    assert record.code == "ambiguous_number"


@pytest.mark.parametrize(
    ("proof", "expected"), [("0,5", 1.234), ("0.5", 1234.0), ("1.234,5", 1.234)]
)
def test_an_ambiguous_value_takes_the_convention_its_column_proved(
    proof: str, expected: float
) -> None:
    records = _read_csv(_csv(";", [_row(1, "1,234"), _row(2, proof)]))
    assert isinstance(records[0], UnifiedRecord), records[0]
    assert records[0].price_usd == expected


def test_a_column_without_proof_takes_the_files_and_contradicting_proof_proves_nothing() -> None:
    # The price column proves nothing itself; the market caps prove the comma convention.
    records = _read_csv(_csv(";", [_row(1, "1,234", "0,5"), _row(2, "7", "1.234,5")]))
    assert isinstance(records[0], UnifiedRecord), records[0]
    assert records[0].price_usd == 1.234
    # Both conventions proved in the column: the ambiguous value is not guessed.
    records = _read_csv(_csv(";", [_row(1, "1,234"), _row(2, "0,5"), _row(3, "0.5")]))
    assert isinstance(records[0], Rejection) and records[0].code == "ambiguous_number"
    assert [r.price_usd for r in records[1:] if isinstance(r, UnifiedRecord)] == [0.5, 0.5]


# --- properties -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How one column writes its numbers."""

    grouping: str  # "none", "mark" (`,` or `.`, whichever is not the decimal mark), "space"
    currency: str  # "", "$" (prefix) or " USD" (suffix)


def _write(value: Decimal, convention: Convention, style: Style) -> str:
    whole, _, fraction = f"{value:f}".partition(".")
    decimal_mark, group_mark = (".", ",") if convention is POINT else (",", ".")
    separator = {"none": "", "mark": group_mark, "space": " "}[style.grouping]
    groups: list[str] = []
    while len(whole) > 3:
        whole, tail = whole[:-3], whole[-3:]
        groups.insert(0, tail)
    text = separator.join([whole, *groups])
    if fraction:
        text += decimal_mark + fraction
    if style.currency == "$":
        return "$" + text
    return text + style.currency


_AMBIGUOUS = re.compile(r"^[1-9][0-9]{0,2}[.,][0-9]{3}$")


def _is_ambiguous(written: str) -> bool:
    """Written as `1,234` or `1.234` (currency aside): both conventions read it, differently."""
    return _AMBIGUOUS.match(written.removeprefix("$").removesuffix(" USD")) is not None


@st.composite
def _values(draw: st.DrawFn) -> list[Decimal]:
    places = draw(st.integers(0, 8))
    number = st.decimals(
        min_value=0,
        max_value=Decimal(10**15),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )
    return draw(st.lists(number, min_size=1, max_size=6))


_STYLES = st.builds(
    Style, st.sampled_from(["none", "mark", "space"]), st.sampled_from(["", "$", " USD"])
)


def _property_file(
    values: list[Decimal],
    convention: Convention,
    price_style: Style,
    cap_style: Style,
    delimiter: str,
    quote_all: bool,
) -> tuple[str, list[tuple[str, Decimal]], list[tuple[str, Decimal]]]:
    rows, caps, prices = [], [], []
    for i, value in enumerate(values):
        price = value if value > 0 else Decimal(1)  # a price is never zero
        price_text = _write(price, convention, price_style)
        cap_text = _write(value, convention, cap_style)
        rows.append(_row(i, price_text, cap_text))
        caps.append((cap_text, value))
        prices.append((price_text, price))
    return _csv(delimiter, rows, quote_all=quote_all), caps, prices


@settings(max_examples=200, deadline=None)
@given(
    values=_values(),
    convention=st.sampled_from([POINT, COMMA]),
    price_style=_STYLES,
    cap_style=_STYLES,
    delimiter=st.sampled_from(DELIMITERS),
    quote_all=st.booleans(),
)
@example(
    values=[Decimal("0.123")],
    convention=COMMA,
    price_style=Style("none", ""),
    cap_style=Style("none", ""),
    delimiter=";",
    quote_all=False,
)
@example(
    values=[Decimal("1234"), Decimal("0.5")],
    convention=COMMA,
    price_style=Style("mark", "$"),
    cap_style=Style("mark", " USD"),
    delimiter=",",
    quote_all=False,
)
@example(
    values=[Decimal("1234"), Decimal("1.234")],
    convention=POINT,
    price_style=Style("mark", ""),
    cap_style=Style("none", ""),
    delimiter="|",
    quote_all=True,
)
def test_a_number_written_any_way_reads_back_as_written_or_is_refused(
    values: list[Decimal],
    convention: Convention,
    price_style: Style,
    cap_style: Style,
    delimiter: str,
    quote_all: bool,
) -> None:
    text, caps, prices = _property_file(
        values, convention, price_style, cap_style, delimiter, quote_all
    )
    records = _read_csv(text)
    assert len(records) == len(values)
    for record, (cap_text, cap), (price_text, price) in zip(records, caps, prices, strict=True):
        if isinstance(record, Rejection):
            assert record.code in REFUSED, (cap_text, price_text, record.reason)
            # Only a form both conventions read is ever refused, and only for want of proof.
            assert _is_ambiguous(cap_text) or _is_ambiguous(price_text), record.reason
            continue
        assert record.market_cap_usd == float(cap), (cap_text, record.market_cap_usd)
        assert record.price_usd == float(price), (price_text, record.price_usd)


@settings(max_examples=200, deadline=None)
@given(
    values=_values(),
    convention=st.sampled_from([POINT, COMMA]),
    style=_STYLES,
    delimiter=st.sampled_from(DELIMITERS),
)
def test_a_value_whose_form_decides_is_read_even_when_nothing_else_proves_anything(
    values: list[Decimal], convention: Convention, style: Style, delimiter: str
) -> None:
    """One value per file: no other row can help; the form alone decides, or it is refused."""
    for value in values:
        price = value if value > 0 else Decimal(1)
        text = _write(price, convention, style)
        [record] = _read_csv(_csv(delimiter, [_row(0, text)]))
        if _is_ambiguous(text):
            assert isinstance(record, Rejection) and record.code == "ambiguous_number", text
        else:
            assert isinstance(record, UnifiedRecord), (text, record)
            assert record.price_usd == float(price), (text, record.price_usd)
