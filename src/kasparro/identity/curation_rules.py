"""What a person's identity correction is made of, checked before anything is written: who,
why, which source asset; and the refusals, each with the HTTP status the API answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Key = tuple[str, str]
ACTIONS = ("merge", "split", "pin", "accept", "reject")
REVIEW_STATUSES = ("open", "accepted", "rejected", "curated")
MAX_REASON = 1000
_ACTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@+\-]{0,63}")


class CurationError(ValueError):
    """A correction refused, with a message for a person. `status` is the HTTP answer."""

    status = 400


class NotFound(CurationError):
    status = 404


class Conflict(CurationError):
    status = 409


def check_actor(name: str) -> str:
    """A name for the audit trail: 1-64 letters, digits, spaces and `._@+-`, nothing else."""
    name = name.strip()
    if not _ACTOR.fullmatch(name):
        raise CurationError(
            "an actor is 1-64 characters: letters, digits, spaces and . _ @ + - "
            "(starting with a letter or digit)"
        )
    return name


def check_reason(reason: str) -> str:
    """Why: required, so the audit trail explains itself; printable, at most 1000 characters."""
    reason = reason.strip()
    if not reason:
        raise CurationError("a reason is required: say why, for the audit trail")
    if len(reason) > MAX_REASON or any(ord(c) < 32 and c not in "\t\n" for c in reason):
        raise CurationError(f"a reason is printable text of at most {MAX_REASON} characters")
    return reason


def parse_member(text: str) -> Key:
    """`SOURCE:ID` (the id may hold colons itself)."""
    source, sep, source_asset_id = text.partition(":")
    if not sep or not source or not source_asset_id:
        raise CurationError(
            f"{text!r}: a source asset is written SOURCE:ID (the source, a colon, its id there)"
        )
    return source, source_asset_id


@dataclass(frozen=True, slots=True)
class Who:
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """The audit row a correction wrote."""

    audit_id: int
    action: str
    asset_id: str
    before: dict[str, Any]
    after: dict[str, Any]
    touched: tuple[str, ...] = ()  # the assets whose members changed (and still exist)
