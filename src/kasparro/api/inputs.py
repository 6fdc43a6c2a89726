"""What every request's parameters must be before any route sees them: text the databases can
store and compare, of a sane size.

Checked once, by the middleware, on the raw query string and path (Starlette would decode bytes
that are not UTF-8 into U+FFFD and pass them on): a parameter that is not UTF-8 once
percent-decoded (invalid bytes, a lone surrogate), that holds a control character (PostgreSQL
refuses NUL in text; no parameter of this API has a use for any C0 control or DEL), or that is
longer than any parameter of this API may be, is refused with a 400 naming it. Decoded cursors
hold text that reaches the database too: they are checked with `is_clean_text`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.types import Scope

# The longest value any parameter accepts (`cursor`, 2048); routes declare tighter limits.
MAX_VALUE_LENGTH = 2048
MAX_PARAMETERS = 100
# For OpenAPI `pattern`s: text without control characters.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_SHOWN = 64  # characters of a rejected parameter's name quoted back


@dataclass(frozen=True, slots=True)
class BadParameter:
    """One refused parameter, as a problem document's `errors` item (ProblemParam)."""

    name: str  # printable: control characters escaped, cut to _NAME_SHOWN
    location: str  # "query" or "path"
    message: str


def is_clean_text(text: str, max_length: int = MAX_VALUE_LENGTH) -> bool:
    """No control character, no lone surrogate, at most `max_length` characters."""
    if len(text) > max_length or _CONTROL.search(text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_request(scope: Scope) -> BadParameter | None:
    """The first unacceptable query or path parameter of this request, if any."""
    return _check_query(scope.get("query_string", b"")) or _check_path(scope)


def printable(text: str, limit: int = _NAME_SHOWN) -> str:
    """`text` safe to quote back: control characters and lone surrogates escaped, cut short."""
    shown = repr(text[:limit])[1:-1]
    return shown + ("…" if len(text) > limit else "")


def _check_query(query: bytes) -> BadParameter | None:
    pairs = [pair for pair in query.split(b"&") if pair]
    if len(pairs) > MAX_PARAMETERS:
        return BadParameter("query", "query", f"more than {MAX_PARAMETERS} parameters")
    for pair in pairs:
        raw_name, _, raw_value = pair.partition(b"=")
        name = _decode(raw_name.replace(b"+", b" "))
        shown = printable(name) if name is not None else printable(raw_name.decode("latin-1"))
        if name is None or not is_clean_text(name, _NAME_SHOWN):
            return BadParameter(shown, "query", "the parameter's name is not acceptable text")
        problem = _value_problem(_decode(raw_value.replace(b"+", b" ")))
        if problem:
            return BadParameter(shown, "query", problem)
    return None


def _check_path(scope: Scope) -> BadParameter | None:
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes):
        raw = str(scope.get("path", "")).encode("utf-8", "surrogatepass")
    segments = raw.split(b"/")
    for index, segment in enumerate(segments):
        problem = _value_problem(_decode(segment))
        if problem:
            shown = [_decode(s) or "" for s in segments]
            return BadParameter(_path_param_name(scope, shown, index), "path", problem)
    return None


def _value_problem(value: str | None) -> str | None:
    if value is None:
        return "not UTF-8 text once percent-decoded (invalid bytes or a lone surrogate)"
    if len(value) > MAX_VALUE_LENGTH:
        return f"longer than {MAX_VALUE_LENGTH} characters"
    if _CONTROL.search(value):
        return "contains a control character (U+0000 to U+001F, or U+007F)"
    return None


def _decode(raw: bytes) -> str | None:
    """Percent-decoded UTF-8, or None when the bytes are no text (Python refuses surrogates)."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _path_param_name(scope: Scope, segments: list[str], index: int) -> str:
    """The name of the path parameter at segment `index`, from the app's OpenAPI path templates
    (routing has not run yet), or "path" when no template has a parameter there."""
    openapi = getattr(scope.get("app"), "openapi", None)
    templates = openapi().get("paths", {}) if callable(openapi) else {}
    for template in templates:
        parts = str(template).split("/")
        if len(parts) != len(segments) or not parts[index].startswith("{"):
            continue
        if all(
            part.startswith("{") or part == segment
            for i, (part, segment) in enumerate(zip(parts, segments, strict=True))
            if i != index
        ):
            return parts[index].strip("{}")
    return "path"
