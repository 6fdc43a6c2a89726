"""One number parser for every text source, aware of both conventions: `1,234.56` (decimal
point, comma groups) and `1.234,56` (decimal comma, point groups).

A value is read by its own form when the form decides it: `0,5`, `1.234,56`, `12,3456`,
`1,234,567`. A form both conventions read, differently (`1,234`, `1.234`), is read with the
convention its column (or file) proved elsewhere, and is otherwise refused as ambiguous: never
guessed. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

MISSING = frozenset({"", "n/a", "na", "null", "none", "-", "--", "nan", "#n/a"})
# Spaces and apostrophes people and spreadsheets put between digit groups.
_SPACES = " \u00a0\u2009\u202f\u2007'’"
_GROUP_SPACES = dict.fromkeys(map(ord, _SPACES), None)
# Digits a space apart, and the one place that may happen: between the whole part's groups
# (`1 234 567,5`). `10 20` is two numbers, or a typo; either way not 1020.
_SPACED_DIGITS = re.compile(rf"[0-9][{_SPACES}]+[0-9]")
_SPACE_GROUPED = re.compile(rf"(?<![0-9.,])[1-9][0-9]{{0,2}}(?:[{_SPACES}][0-9]{{3}})+(?![0-9])")
_CURRENCY = re.compile(r"^(?:us\$|usd|\$)|(?:usd|\$)$", re.IGNORECASE)
_SHAPE = re.compile(r"^(?P<body>[0-9.,]*[0-9][0-9.,]*)(?P<exp>[eE][-+]?[0-9]+)?$")
# Digit groups: 1 to 3 digits (not starting with 0), then groups of exactly 3.
_GROUPED = {sep: re.compile(rf"^[1-9][0-9]{{0,2}}(?:\{sep}[0-9]{{3}})+$") for sep in ".,"}


class Convention(StrEnum):
    POINT = "point"  # 1,234.56
    COMMA = "comma"  # 1.234,56


class NumberError(ValueError):
    """A text that is not a number we can read with certainty; `code` is the quarantine reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class _Reading:
    value: float | None  # the value, when the form alone decides it
    proves: Convention | None  # what the form proves about its convention
    readings: dict[Convention, float]  # both readings of an ambiguous form


def _read(text: str) -> _Reading:
    groups = [m.span() for m in _SPACE_GROUPED.finditer(text)]
    for spaced in _SPACED_DIGITS.finditer(text):
        if not any(a <= spaced.start() and spaced.end() <= b for a, b in groups):
            raise NumberError("not_a_number", f"not a number: {text!r}")
    core = text.strip().translate(_GROUP_SPACES)
    sign = ""
    if core[:1] in ("-", "+"):
        sign, core = core[0], core[1:]
    core = _CURRENCY.sub("", core)  # `$-5`, `-$5`, `5 USD`
    if not sign and core[:1] in ("-", "+"):
        sign, core = core[0], core[1:]
    shape = _SHAPE.match(core)
    if shape is None:
        raise NumberError("not_a_number", f"not a number: {text!r}")
    body, exp = shape["body"], shape["exp"] or ""
    points, commas = body.count("."), body.count(",")

    def number(digits: str) -> float:
        return float(f"{sign}{digits}{exp}")

    def grouped(part: str, sep: str) -> bool:
        return _GROUPED[sep].match(part) is not None

    if points == 0 and commas == 0:
        return _Reading(number(body), None, {})
    if points and commas:
        decimal = "," if body.rfind(",") > body.rfind(".") else "."
        group = "." if decimal == "," else ","
        whole, _, fraction = body.rpartition(decimal)
        if body.count(decimal) != 1 or not grouped(whole, group) or not fraction.isdigit():
            raise NumberError("not_a_number", f"not a number: {text!r}")
        proves = Convention.COMMA if decimal == "," else Convention.POINT
        return _Reading(number(whole.replace(group, "") + "." + fraction), proves, {})
    sep = "." if points else ","
    # The convention in which `sep` is the decimal mark, and the one in which it groups.
    as_decimal = Convention.POINT if sep == "." else Convention.COMMA
    as_group = Convention.COMMA if sep == "." else Convention.POINT
    if body.count(sep) > 1:
        if not grouped(body, sep):
            raise NumberError("not_a_number", f"not a number: {text!r}")
        return _Reading(number(body.replace(sep, "")), as_group, {})
    whole, _, fraction = body.partition(sep)
    decimal_value = number((whole or "0") + "." + fraction) if fraction else number(whole)
    if exp or len(fraction) != 3 or not grouped(body, sep):
        # Only a decimal mark can stand here: `0,5`, `12.3456`, `0,123`, `,5`, `1.5e-8`.
        if not fraction:
            raise NumberError("not_a_number", f"not a number: {text!r}")
        return _Reading(decimal_value, as_decimal, {})
    # `1,234` or `1.234`: a thousand and some, or one and a fraction.
    return _Reading(
        None, None, {as_decimal: decimal_value, as_group: number(body.replace(sep, ""))}
    )


def parse_number(text: str | None, convention: Convention | None = None) -> float | None:
    """The number `text` writes, None when it is absent (`""`, `N/A`).

    An ambiguous form is read with `convention`; without one it raises `ambiguous_number`.
    """
    if text is None or text.strip().lower() in MISSING:
        return None
    reading = _read(text)
    if reading.value is not None:
        return reading.value
    if convention is None:
        readings = " or ".join(f"{v:g}" for v in reading.readings.values())
        raise NumberError(
            "ambiguous_number",
            f"ambiguous number: {text!r} reads as {readings}, and nothing else in its column "
            "or file says which convention it uses",
        )
    return reading.readings[convention]


def proves(text: str | None) -> Convention | None:
    """The convention this value's form proves, if any (a value we cannot read proves none)."""
    if text is None or text.strip().lower() in MISSING:
        return None
    try:
        return _read(text).proves
    except NumberError:
        return None


@dataclass(slots=True)
class Evidence:
    """What a column's values proved so far: each convention, how many times."""

    point: int = 0
    comma: int = 0

    def add(self, values: Iterable[str | None]) -> None:
        for value in values:
            found = proves(value)
            if found is Convention.POINT:
                self.point += 1
            elif found is Convention.COMMA:
                self.comma += 1

    def merge(self, other: Evidence) -> Evidence:
        return Evidence(self.point + other.point, self.comma + other.comma)

    @property
    def convention(self) -> Convention | None:
        """The convention proved without contradiction, or None (no proof, or both proved)."""
        if self.point and not self.comma:
            return Convention.POINT
        if self.comma and not self.point:
            return Convention.COMMA
        return None


def is_ambiguous(text: str | None) -> bool:
    """True for a form both conventions read, differently (`1,234`)."""
    if text is None or text.strip().lower() in MISSING:
        return False
    try:
        return _read(text).value is None
    except NumberError:
        return False
