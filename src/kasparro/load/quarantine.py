"""Quarantine rows that the database always accepts, whatever a record held.

A quarantined record may carry anything a source sent: NUL and other control characters, an id
longer than any column, a payload of megabytes. Its row is bounded and escaped here, so storing
the reason a record was refused can never itself fail.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from kasparro import redaction
from kasparro.db.schema import quarantine
from kasparro.load.sql import insert_ignore
from kasparro.models import Rejection

SOURCE_ASSET_ID_LENGTH = 200
CODE_LENGTH = 32
REASON_LENGTH = 2_000
# A payload larger than this is kept as an excerpt (the full payload is in raw_payloads).
PAYLOAD_BYTES = 64 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str, limit: int) -> str:
    """`text` with control and undecodable characters escaped (`\\x00`), cut to `limit`."""
    escaped = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def quarantine_row(source: str, rejection: Rejection, run_id: str, now: datetime) -> dict[str, Any]:
    body = rejection.raw.body
    payload: bytes | dict[str, Any] = body
    if len(body) > PAYLOAD_BYTES:
        excerpt = body[:4096].decode("utf-8", "replace")
        payload = {"excerpt": printable(excerpt, 4096), "bytes": len(body), "truncated": True}
    said = rejection.source_asset_id
    return {
        "source": source,
        "raw_id": rejection.raw.raw_id,
        "source_asset_id": printable(said, SOURCE_ASSET_ID_LENGTH) if said else None,
        "reason": printable(redaction.redact(rejection.reason), REASON_LENGTH),
        "reason_code": printable(rejection.code, CODE_LENGTH),
        "payload": payload,
        "run_id": run_id,
        "created_at": now,
    }


def store_quarantine(
    conn: Connection, source: str, rejections: Sequence[Rejection], run_id: str, now: datetime
) -> int:
    """Quarantine each rejection once per payload (a rerun adds nothing); returns how many."""
    unique = {q.raw.raw_id: q for q in rejections}
    insert_ignore(
        conn, quarantine, [quarantine_row(source, q, run_id, now) for q in unique.values()]
    )
    return len(rejections)


def payload_of(body: bytes) -> dict[str, Any]:
    """A stored payload's JSON, for a record whose own row the database refused."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"excerpt": printable(body[:4096].decode("utf-8", "replace"), 4096)}
    return value if isinstance(value, dict) else {"payload": value}
