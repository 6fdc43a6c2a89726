"""A fake a source brings with it: found through the source, not wired in by name.

A source class names its fake (`fake = "package.module:FAKE"`, a `FakeVendor`); `FakeUpstreams`
serves every one it finds among the installed sources on a server of its own and merges its
settings, so the demo and the tests reach it with no line about it anywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, TypeVar

from starlette.types import ASGIApp

from kasparro.fakes.faults import FakeState
from kasparro.sources.registry import source_classes

T = TypeVar("T")


def _no_settings(state: FakeState, url: str) -> dict[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class FakeVendor:
    """One vendor's fake: its app over the shared state, the path of the base URL under the
    server's root, and the settings that point its source at it (given that base URL)."""

    name: str
    app: Callable[[FakeState], ASGIApp]
    prefix: str = ""
    settings: Callable[[FakeState, str], dict[str, Any]] = field(default=_no_settings)


def own_state(state: FakeState, vendor: str, factory: Callable[[], T]) -> T:
    """The state a fake keeps of its own in the shared `FakeState` (made on first use)."""
    with state.lock:
        found: T = state.plugins.setdefault(vendor, factory())
        return found


def plugged_fakes() -> list[FakeVendor]:
    """The fakes the installed sources name, in source name order."""
    found: list[FakeVendor] = []
    for name, source in source_classes().items():
        where = getattr(source, "fake", None)
        if not where:
            continue
        module, _, attribute = str(where).partition(":")
        vendor = getattr(import_module(module), attribute, None)
        if not isinstance(vendor, FakeVendor) or vendor.name != name:
            raise TypeError(f"source {name}: fake {where!r} is not a FakeVendor named {name!r}")
        found.append(vendor)
    return found
