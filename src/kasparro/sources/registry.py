"""The sources this installation has: every class registered under the entry point group
`kasparro.sources`, the built-in ones exactly as a third party's (see docs/sources.md).

Nothing else in Kasparro names a source: the runner, the fetch process, drift, the settings and
the API ask this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from kasparro.logging import get_logger
from kasparro.sources.base import Source

if TYPE_CHECKING:
    from kasparro.config import CoreSettings
    from kasparro.quality.expected import FieldSpec

GROUP = "kasparro.sources"
log = get_logger(__name__)


class SourcePluginError(RuntimeError):
    """A registered source that cannot be used; the message names the entry point."""


@cache
def _discovered() -> tuple[dict[str, type[Source]], tuple[str, ...]]:
    """(name -> class, problems): plugins that fail to load are reported, not fatal, so one
    broken third-party package does not stop the sources that work."""
    found: dict[str, type[Source]] = {}
    problems: list[str] = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        try:
            source = _load(point)
        except SourcePluginError as exc:
            problems.append(str(exc))
            log.warning("source_plugin_unusable", problem=str(exc))
            continue
        if source.name in found:
            problems.append(f"source {source.name!r} is registered twice ({point.value})")
            continue
        found[source.name] = source
    if not found and not problems:
        problems.append(
            f"no source is registered under the entry point group {GROUP!r}: "
            "is Kasparro installed (make install)?"
        )
    return found, tuple(problems)


def _load(point: EntryPoint) -> type[Source]:
    where = f"{point.name} = {point.value}"
    try:
        loaded = point.load()
    except Exception as exc:
        raise SourcePluginError(f"source plugin {where} cannot be loaded: {exc}") from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Source)):
        raise SourcePluginError(f"source plugin {where} is not a kasparro Source class")
    if getattr(loaded, "name", None) != point.name:
        raise SourcePluginError(
            f"source plugin {where}: its name is {getattr(loaded, 'name', None)!r}, "
            "the entry point's must be the same"
        )
    if not loaded.env_prefix.endswith("_") or loaded.env_prefix != loaded.env_prefix.upper():
        raise SourcePluginError(
            f"source plugin {where}: env_prefix {loaded.env_prefix!r} must be upper case and "
            "end with '_' (e.g. 'ACME_')"
        )
    return loaded


def source_classes() -> Mapping[str, type[Source]]:
    """Every usable source, by name, in name order."""
    return _discovered()[0]


def plugin_problems() -> tuple[str, ...]:
    """Registered sources that could not be loaded, one sentence each (`kasparro doctor`)."""
    return _discovered()[1]


def source_names() -> tuple[str, ...]:
    return tuple(source_classes())


def source_class(name: str) -> type[Source]:
    try:
        return source_classes()[name]
    except KeyError:
        known = ", ".join(source_names()) or "none"
        raise ValueError(f"unknown source {name!r}; known: {known}") from None


def build_source(settings: CoreSettings, name: str) -> Source:
    return source_class(name).from_settings(settings)


def is_incremental(name: str) -> bool:
    """Whether a run of the source reads only what is new (a run finding nothing is normal)."""
    source = source_classes().get(name)
    return source is not None and source.incremental


def expected_shape(name: str) -> Mapping[str, FieldSpec] | None:
    source = source_classes().get(name)
    return source.expected_shape if source is not None else None


def enabled_sources(settings: CoreSettings) -> list[str]:
    return [
        name
        for name, source in source_classes().items()
        if settings.source_settings(source.settings_model, source.env_prefix).enabled
    ]
