"""One redaction mechanism for every path a text leaves the process by: log lines, stored run
errors, problem documents, /health.

A configured secret must not appear anywhere, not even in part: any run of 8 or more characters
of a secret (as configured, or URL-encoded as it travels in query strings) is replaced. Callers
redact first and truncate after, so a cut never leaves a prefix of a secret behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# The shortest piece of a secret that is never shown. Secrets shorter than this are masked whole;
# those under MINIMUM characters are not masked at all (masking every "ab" would say nothing).
PIECE = 8
MINIMUM = 4

_lock = threading.Lock()
_secrets: set[str] = set()
# Window size -> the pieces of that size never shown.
_pieces: dict[int, frozenset[str]] = {}


def register(secrets: Iterable[str | None]) -> None:
    """Add secrets this process knows (settings' keys and passwords); kept for its lifetime."""
    global _pieces
    added = {s for s in secrets if s and len(s.strip()) >= MINIMUM}
    if not added - _secrets:
        return
    with _lock:
        _secrets.update(added)
        forms = {f for s in _secrets for f in (s, quote(s, safe=""), quote_plus(s))}
        pieces: dict[int, set[str]] = {}
        for form in forms:
            size = min(PIECE, len(form))
            pieces.setdefault(size, set()).update(
                form[i : i + size] for i in range(len(form) - size + 1)
            )
        _pieces = {size: frozenset(found) for size, found in pieces.items()}


def redact(text: str) -> str:
    """`text` with every piece of a registered secret replaced by `[redacted]`."""
    hidden = bytearray(len(text))
    found = False
    for size, pieces in _pieces.items():
        for start in range(len(text) - size + 1):
            if text[start : start + size] in pieces:
                hidden[start : start + size] = b"\1" * size
                found = True
    if not found:
        return text
    out: list[str] = []
    start = 0
    while start < len(text):
        end = start
        while end < len(text) and hidden[end] == hidden[start]:
            end += 1
        out.append(REDACTED if hidden[start] else text[start:end])
        start = end
    return "".join(out)


def redact_value(value: object) -> object:
    """Strings redacted inside nested lists, tuples and dicts; other values as they are, unless
    their text (an exception, a URL object) holds a secret: then that text, redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_make"):  # a named tuple
        return value._make(redact_value(v) for v in value)
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    redacted = redact(text)
    return value if redacted == text else redacted


def excerpt(text: str, limit: int) -> str:
    """Redacted, then cut to `limit` characters (in that order)."""
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"
