"""The source plugin interface: what every source declares and provides.

A source is one class, registered under the entry point group `kasparro.sources` (see
docs/sources.md). It declares its settings (a `SourceSettings` model read from `<PREFIX><FIELD>`
variables), whether it reads incrementally, the item shape drift is measured against, and
provides batches of raw records with their checkpoint, a normalizer and a cheap check.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from kasparro.models import RawRecord, Rejection, UnifiedRecord
from kasparro.quality.expected import FieldSpec

if TYPE_CHECKING:
    from kasparro.config import CoreSettings

Cursor = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Batch:
    """Raw records that are loaded in one transaction, together with the cursor that covers them."""

    records: Sequence[RawRecord]
    cursor: Cursor
    label: str
    # Records the source could not even shape into a payload (a broken CSV line, say).
    rejections: Sequence[Rejection] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Check:
    """What `kasparro doctor` says of one source: ok, warning or error, and why in one line."""

    status: Literal["ok", "warning", "error"]
    detail: str


class SourceError(Exception):
    """An upstream problem with a message safe to show and store (no secrets)."""

    retriable: bool = False


class UpstreamUnavailable(SourceError):
    """Rate limits, 5xx, timeouts, connection errors, non-JSON error pages: worth retrying."""

    retriable = True


class UpstreamAuthError(SourceError):
    """Missing, wrong or wrong-plan key: retrying cannot help."""


class BadPayload(SourceError):
    """The upstream answered, but not in the shape we know (a bad page fails the run cleanly)."""


class SourceSettings(BaseModel):
    """A source's own settings. Field `api_key` of a source with the prefix `ACME_` is read
    from `ACME_API_KEY`; a field with an `alias` is read from that name instead (several
    sources may share it). `SecretStr` fields are redacted everywhere, like every secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Run this source.")


def setting_fields(model: type[SourceSettings], prefix: str) -> dict[str, tuple[str, FieldInfo]]:
    """The flat setting name (lower case, as `Settings` holds it) of each field of a source's
    settings model -> the key the model validates it by, and the field."""
    flat: dict[str, tuple[str, FieldInfo]] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        flat[(info.alias or f"{prefix}{name}").lower()] = (key, info)
    return flat


class Source(ABC):
    """A source: fetches batches (I/O) and normalizes each raw record (pure).

    Subclasses registered as plugins set the class attributes below and, when their constructor
    takes more than the settings, override `from_settings`.
    """

    name: str
    # What people call it, in messages and docs ("Acme Markets").
    title: ClassVar[str] = ""
    # Its settings are read from variables starting with this ("ACME_").
    env_prefix: ClassVar[str] = ""
    settings_model: ClassVar[type[SourceSettings]] = SourceSettings
    # Items a run of it finds are only those new since its checkpoint (a CSV file that grows), so
    # a run finding nothing is normal, not a drop.
    incremental: ClassVar[bool] = False
    # The item shape its API is known to deliver (quality/expected.py); None: no fixed shape.
    expected_shape: ClassVar[Mapping[str, FieldSpec] | None] = None
    # Its fake upstream, "package.module:ATTRIBUTE" naming a `kasparro.fakes.plugin.FakeVendor`:
    # served by FakeUpstreams (tests, `make demo`) with no wiring elsewhere. None: no fake.
    fake: ClassVar[str | None] = None
    # Its own ids of a few assets every source must agree on (the quote assets exchanges price
    # in), by a shared group name ("bitcoin"): crosswalk rows shipped with the source, so an
    # exchange's bare `XXBT` joins Bitcoin whichever source loads first.
    known_assets: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def from_settings(cls, settings: CoreSettings) -> Self:
        """Build the source from the settings; its own are `settings.source_settings(cls)`.
        By default the constructor takes the settings alone: `cls(settings)`."""
        return cls(settings)  # type: ignore[call-arg]  # the constructor documented above

    @abstractmethod
    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        """Yield batches from where `cursor` (the last committed checkpoint) left off."""

    @abstractmethod
    def normalize(self, raw: RawRecord) -> UnifiedRecord | Rejection:
        """Turn one raw record into the unified model, or say why it cannot be."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or files."""

    def check(self) -> Check:
        """Whether the source can be read, with one cheap request or read (`kasparro doctor`)."""
        return Check("warning", f"{self.name}: this source has no check")


def validate(raw: RawRecord, fields: Mapping[str, Any]) -> UnifiedRecord | Rejection:
    """Validate mapped fields; a failure becomes a Rejection that names the field."""
    source_asset_id = fields.get("source_asset_id")
    try:
        return UnifiedRecord.model_validate({**fields, "source": raw.source, "raw_id": raw.raw_id})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}" for err in errors
        )
        return Rejection(
            raw=raw,
            reason=reasons,
            source_asset_id=str(source_asset_id) if source_asset_id else None,
            code=_REASON_CODES.get(errors[0]["type"], "invalid_field"),
        )


# Pydantic's error types, as the quarantine reasons they stand for.
_REASON_CODES = {
    "unstorable_text": "unstorable_text",
    "string_unicode": "unstorable_text",
    "string_too_long": "too_long",
    "implausible_timestamp": "implausible_timestamp",
    "greater_than": "invalid_value",
    "greater_than_equal": "invalid_value",
    "finite_number": "invalid_value",
    "missing": "missing_field",
}


def parse_number(value: Any) -> float | None:
    """Numbers arrive as int, float, e-notation strings, "" or null: None means absent."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    raise ValueError(f"not a number: {value!r}")


def number_field(item: Mapping[str, Any], key: str, path: str = "") -> float | None:
    """`parse_number` of one field, with an error that names the field."""
    try:
        return parse_number(item.get(key))
    except ValueError as exc:
        raise ValueError(f"{path}{key}: {exc}") from None
