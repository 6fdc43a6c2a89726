"""CSV files, clean or messy, read by one robust reader.

Handles: a BOM, CRLF or LF, `,` `;` tab or `|` delimiters (sniffed from the header), header names
in other words and order (aliases), quoted numbers with thousands separators and currency signs,
`N/A` and empty values, blank and duplicated lines, mixed-case symbols.

Numbers are read by `numbers.parse_number`: a form both conventions read differently (`1,234`)
takes the convention its column proved elsewhere in the file (`0,5`, `1.234,56`), else the
file's; with no proof, or contradicting proof, it is quarantined as `ambiguous_number`.

Incremental: the checkpoint holds the byte offset read so far, a hash of those bytes and the
number conventions they proved. A file that only grew is read from that offset; a file whose read
part changed was rewritten and is read from the top (idempotent loading makes that safe). A last
line without its newline may be a row still being written: the checkpoint never passes it, and
it is read only once the file has been still for `settle_seconds`.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Self

from pydantic import Field

from kasparro.identity.resolver import slug
from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.sources.base import (
    BadPayload,
    Batch,
    Check,
    Cursor,
    Source,
    SourceSettings,
    validate,
)
from kasparro.sources.csv_lines import LineReader, hash_range, read_records, sniff
from kasparro.sources.numbers import Convention, Evidence, NumberError, is_ambiguous
from kasparro.sources.numbers import parse_number as parse_text_number

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
FIELDS = ("symbol", "name", "price_usd", "market_cap_usd", "volume_24h_usd", "date")
# Header spellings seen in the wild, normalized (lower case, non-alphanumerics as "_").
ALIASES: Mapping[str, str] = {
    **dict.fromkeys(("symbol", "ticker", "sym", "code", "coin_symbol"), "symbol"),
    **dict.fromkeys(("name", "coin", "asset", "asset_name", "coin_name"), "name"),
    **dict.fromkeys(
        ("price_usd", "price", "usd_price", "price_in_usd", "current_price", "last_price", "close"),
        "price_usd",
    ),
    **dict.fromkeys(
        ("market_cap_usd", "market_cap", "marketcap", "mcap", "mkt_cap", "market_cap_in_usd"),
        "market_cap_usd",
    ),
    **dict.fromkeys(
        ("volume_24h_usd", "volume_24h", "volume", "vol_24h", "total_volume", "24h_volume"),
        "volume_24h_usd",
    ),
    **dict.fromkeys(("date", "day", "as_of", "observed_at", "timestamp", "last_updated"), "date"),
}
REQUIRED = ("symbol", "name", "price_usd", "date")
NUMERIC = ("price_usd", "market_cap_usd", "volume_24h_usd")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y")
# Beside "row" in a payload whose row has ambiguous numbers: the conventions they were read with
# (proved by the rest of the file), so that a replay of the stored payload reads them alike.
CONVENTIONS_KEY = "number_conventions"


def header_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")


def field_map(header: list[str]) -> dict[str, str]:
    """Our field -> the file's column name, or an error naming what is missing or doubled."""
    mapping: dict[str, str] = {}
    for column in header:
        field = ALIASES.get(header_key(column))
        if field is None:
            continue
        if field in mapping:
            raise BadPayload(f"columns {mapping[field]!r} and {column!r} both mean {field}")
        mapping[field] = column
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        raise BadPayload(
            f"no column for {', '.join(missing)} in header {header!r} "
            f"(accepted names: see ALIASES in {__name__})"
        )
    return mapping


def parse_csv_number(value: str | None, convention: Convention | None = None) -> float | None:
    """`"$1,234.50"`, `1 234,5`, `1.2e-08`, `N/A`: a float, or None when absent; raises
    NumberError (`not_a_number`, `ambiguous_number`) when it cannot be read with certainty."""
    return parse_text_number(value, convention)


def parse_csv_date(value: str | None) -> datetime:
    text = (value or "").strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def normalize_row(raw: RawRecord) -> UnifiedRecord | Rejection:
    """One CSV row (a header -> text mapping) to the unified model; pure."""
    row: dict[str, str] = raw.payload["row"]
    try:
        columns = field_map(list(row))
    except BadPayload as exc:
        return Rejection(raw=raw, reason=str(exc))
    symbol = (row.get(columns["symbol"]) or "").strip()
    name = (row.get(columns["name"]) or "").strip()
    # `{ticker}-{name}`, or the name's slug for a coin without a ticker; no name, no id.
    source_asset_id = "-".join(p for p in (slug(symbol), slug(name)) if p) if slug(name) else None
    fields: dict[str, Any] = {"source_asset_id": source_asset_id, "symbol": symbol, "name": name}
    conventions: dict[str, str] = raw.payload.get(CONVENTIONS_KEY) or {}
    errors: list[str] = []
    codes: list[str] = []
    for field in NUMERIC:
        column = columns.get(field)
        known = conventions.get(field)
        try:
            fields[field] = parse_csv_number(
                row.get(column) if column else None, Convention(known) if known else None
            )
        except NumberError as exc:
            errors.append(f"{field}: {exc}")
            codes.append(exc.code)
    if "price_usd" in fields and fields["price_usd"] is None:
        errors.append("price_usd: missing (a price is never defaulted)")
        codes.append("missing_price")
    try:
        fields["observed_at"] = parse_csv_date(row.get(columns["date"]))
    except ValueError as exc:
        errors.append(f"observed_at: {exc}")
        codes.append("bad_timestamp")
    if errors:
        return Rejection(
            raw=raw, reason="; ".join(errors), source_asset_id=source_asset_id, code=codes[0]
        )
    return validate(raw, fields)


class CsvSettings(SourceSettings):
    """`CSV_*`: the file, and how long its unfinished last line must be still."""

    path: Path = SAMPLES_DIR / "markets.csv"
    # A last line without its newline may still be being written: it is read only once its
    # file has not changed for this long (the checkpoint never passes it). Shared by every CSV
    # source, under one name.
    settle_seconds: float = Field(default=30, ge=0, alias="csv_settle_seconds")


class WeirdCsvSettings(CsvSettings):
    """`CSV_WEIRD_*`."""

    path: Path = SAMPLES_DIR / "markets_weird.csv"


class CsvSource(Source):
    """A CSV file, read from its checkpoint; `batch_size` rows per transaction.

    Registered twice: `csv` (a clean file) and `csv_weird` (a messy one), each with its path.
    """

    name = "csv"
    title = "CSV file"
    env_prefix = "CSV_"
    settings_model: ClassVar[type[CsvSettings]] = CsvSettings
    incremental = True

    def __init__(
        self, name: str, path: Path, batch_size: int = 2_000, settle_seconds: float = 30.0
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.batch_size = batch_size
        self.settle_seconds = settle_seconds

    @classmethod
    def from_settings(cls, settings: CoreSettings) -> Self:
        own = settings.source_settings(cls.settings_model, cls.env_prefix)
        return cls(cls.name, own.path, settings.etl_batch_size, own.settle_seconds)

    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        return normalize_row(raw)

    def check(self) -> Check:
        """The file is there, and its header line is UTF-8 naming every required column."""
        if not self.path.is_file():
            problem = "is a directory, not a CSV file" if self.path.is_dir() else "not found"
            return Check("error", f"{self.name}: {self.path} {problem}")
        try:
            with self.path.open("rb") as handle:
                header_text = handle.readline().decode("utf-8-sig").rstrip("\r\n")
            if not header_text.strip():
                return Check("error", f"{self.name}: {self.path} has no header line")
            columns = field_map(next(csv.reader([header_text], sniff(header_text))))
        except OSError as exc:
            return Check("error", f"{self.name}: cannot read {self.path}: {exc.strerror}")
        except UnicodeDecodeError:
            return Check("error", f"{self.name}: {self.path} is not a UTF-8 text file")
        except (csv.Error, BadPayload) as exc:
            return Check("error", f"{self.name}: {self.path}: header line: {exc}")
        return Check("ok", f"{self.path}: readable, with columns for {', '.join(columns)}")

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        if self.path.is_dir():
            raise BadPayload(f"{self.name}: {self.path} is a directory, not a CSV file")
        if not self.path.is_file():
            raise BadPayload(f"{self.name}: file not found: {self.path}")
        with self.path.open("rb") as handle:
            yield from self._read(handle, cursor)

    def _read(self, handle: BinaryIO, cursor: Cursor | None) -> Iterator[Batch]:
        header_line = handle.readline()
        try:
            header_text = header_line.decode("utf-8-sig").rstrip("\r\n")
        except UnicodeDecodeError:
            raise BadPayload(
                f"{self.name}: {self.path} is not a UTF-8 text file (is it a CSV at all?)"
            ) from None
        if not header_text.strip():
            raise BadPayload(f"{self.name}: {self.path} has no header line")
        start = len(header_line)
        evidence: dict[str, Evidence] = {}
        if cursor and self._unchanged_prefix(handle, cursor, header_text):
            start = int(cursor["offset"])
            evidence = {f: Evidence(*counts) for f, counts in cursor.get("evidence", {}).items()}
        dialect = sniff(header_text)
        try:
            header = next(csv.reader([header_text], dialect))
            columns = field_map(header)  # a header we cannot read fails the run, with the reason
        except (csv.Error, BadPayload) as exc:
            raise BadPayload(f"{self.name}: {self.path}: header line: {exc}") from None
        settled = time.time() - os.fstat(handle.fileno()).st_mtime >= self.settle_seconds
        found = self._evidence(handle, start, dialect, header, columns, settled)
        # What the rows before each checkpoint proved: a resumed read adds the rest once.
        consumed = _merge(evidence, {f: Evidence() for f in found})
        conventions = _conventions(_merge(evidence, found))
        prefix = hashlib.sha256()
        handle.seek(0)
        hash_range(handle, prefix, start)

        lines = LineReader(handle, start, read_unterminated=settled)
        records: list[RawRecord] = []
        rejections: list[Rejection] = []
        for values in read_records(lines, dialect):
            rejection = None
            if isinstance(values, csv.Error):
                # A stray CR in an unquoted field, an open quote running past the field limit:
                # that record is quarantined and the rest of the file is read on.
                rejection = self._malformed(lines, f"line {lines.number}: {values}")
            else:
                if lines.committed and len(values) >= len(header):
                    row = dict(zip(header, values, strict=False))
                    for field, seen in consumed.items():
                        seen.add((row.get(columns[field]),))
                if not any(v.strip() for v in values):
                    continue  # blank lines, or a line of bare delimiters
                if len(values) > len(header) and not any(v.strip() for v in values[len(header) :]):
                    values = values[: len(header)]  # a trailing delimiter
                if len(values) != len(header):
                    reason = f"line {lines.number}: {len(values)} fields, header has {len(header)}"
                    rejection = self._malformed(lines, reason)
                else:
                    row = dict(zip(header, (v.strip() for v in values), strict=True))
                    records.append(RawRecord.of(self.name, _payload(row, columns, conventions)))
            if rejection is not None:
                rejections.append(rejection)
            if len(records) + len(rejections) >= self.batch_size:
                yield self._batch(records, rejections, lines, prefix, header_text, consumed)
                records, rejections = [], []
        if records or rejections:
            yield self._batch(records, rejections, lines, prefix, header_text, consumed)

    def _malformed(self, lines: LineReader, reason: str) -> Rejection:
        payload = {"line": lines.last_text.rstrip("\r\n"), "line_number": lines.number}
        return Rejection(RawRecord.of(self.name, payload), reason, code="malformed_line")

    def _evidence(
        self,
        handle: BinaryIO,
        start: int,
        dialect: type[csv.Dialect],
        header: list[str],
        columns: Mapping[str, str],
        settled: bool,
    ) -> dict[str, Evidence]:
        """What the numbers from `start` on prove about each numeric column's convention."""
        found = {field: Evidence() for field in NUMERIC if field in columns}
        for values in read_records(LineReader(handle, start, read_unterminated=settled), dialect):
            if isinstance(values, csv.Error) or len(values) < len(header):
                continue
            row = dict(zip(header, values, strict=False))
            for field, seen in found.items():
                seen.add((row.get(columns[field]),))
        return found

    def _batch(
        self,
        records: list[RawRecord],
        rejections: list[Rejection],
        lines: LineReader,
        prefix: Any,
        header_text: str,
        evidence: Mapping[str, Evidence],
    ) -> Batch:
        prefix.update(lines.take_consumed())
        cursor = {
            "offset": lines.offset,
            "prefix_sha256": prefix.hexdigest(),
            "header": header_text,
            # What the rows before `offset` proved: a resumed read must not lose it.
            "evidence": {f: [e.point, e.comma] for f, e in evidence.items()},
        }
        return Batch(
            records=list(records),
            rejections=list(rejections),
            cursor=cursor,
            label=f"{self.path.name} up to line {lines.number}",
        )

    def _unchanged_prefix(self, handle: BinaryIO, cursor: Cursor, header_text: str) -> bool:
        """True when the bytes the checkpoint covers are still the file's first bytes."""
        offset = int(cursor.get("offset", 0))
        if cursor.get("header") != header_text or offset <= 0:
            return False
        handle.seek(0, 2)
        if handle.tell() < offset:
            return False
        digest = hashlib.sha256()
        handle.seek(0)
        hash_range(handle, digest, offset)
        return digest.hexdigest() == cursor.get("prefix_sha256")


class WeirdCsvSource(CsvSource):
    """The second CSV source, for a file in another shape (`CSV_WEIRD_PATH`)."""

    name = "csv_weird"
    title = "CSV file (irregular)"
    env_prefix = "CSV_WEIRD_"
    settings_model = WeirdCsvSettings


def _merge(old: Mapping[str, Evidence], new: Mapping[str, Evidence]) -> dict[str, Evidence]:
    return {f: old.get(f, Evidence()).merge(e) for f, e in new.items()}


def _conventions(evidence: Mapping[str, Evidence]) -> dict[str, Convention]:
    """Per numeric column, the convention its own values proved; else the whole file's."""
    file_wide = Evidence()
    for seen in evidence.values():
        file_wide = file_wide.merge(seen)
    result: dict[str, Convention] = {}
    for field, seen in evidence.items():
        known = seen.convention if seen.point or seen.comma else file_wide.convention
        if known is not None:
            result[field] = known
    return result


def _payload(
    row: dict[str, str], columns: Mapping[str, str], conventions: Mapping[str, Convention]
) -> dict[str, Any]:
    """The row, with the conventions of its ambiguous numbers when the file proved them."""
    used = {
        field: str(conventions[field])
        for field in NUMERIC
        if field in conventions and field in columns and is_ambiguous(row.get(columns[field]))
    }
    return {"row": row, CONVENTIONS_KEY: used} if used else {"row": row}
