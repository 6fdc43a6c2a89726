"""The curated crosswalk: source assets known to be one asset, whatever their names say.

A CSV file with the columns `group,source,source_asset_id`; rows sharing a group are one asset,
and assets in different groups are known to be different. The shipped file covers what the
resolver cannot tell on its own; `IDENTITY_CROSSWALK_PATH` adds a file of the user's.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kasparro.sources.registry import source_classes, source_names

BUILTIN_CROSSWALK = Path(__file__).resolve().parent / "crosswalk.csv"

Key = tuple[str, str]


class CrosswalkError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Crosswalk:
    groups: Mapping[Key, str] = field(default_factory=dict)

    def group_of(self, key: Key) -> str | None:
        return self.groups.get(key)

    def partners(self, key: Key) -> list[Key]:
        """Other source assets in the same group as `key`."""
        group = self.groups.get(key)
        if group is None:
            return []
        return [k for k, g in self.groups.items() if g == group and k != key]

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, str]]) -> Crosswalk:
        groups: dict[Key, str] = {}
        known = source_names()
        for group, source, source_asset_id in rows:
            key = (source, source_asset_id)
            if source not in known:
                raise CrosswalkError(f"crosswalk: unknown source {source!r} in group {group!r}")
            if groups.get(key, group) != group:
                raise CrosswalkError(
                    f"crosswalk: {source}/{source_asset_id} is in two groups "
                    f"({groups[key]!r} and {group!r})"
                )
            groups[key] = group
        return cls(groups)


def read_crosswalk_file(path: Path) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(line for line in handle if not line.startswith("#"))
        missing = {"group", "source", "source_asset_id"} - set(reader.fieldnames or ())
        if missing:
            raise CrosswalkError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for number, row in enumerate(reader, start=2):
            values = tuple(
                (row.get(k) or "").strip() for k in ("group", "source", "source_asset_id")
            )
            if not all(values):
                raise CrosswalkError(f"{path}: row {number} has an empty value")
            rows.append((values[0], values[1], values[2]))
    return rows


def load_crosswalk(extra_path: Path | None = None, *, builtin: bool = True) -> Crosswalk:
    """The shipped crosswalk plus the user's file; a user's group may extend a shipped one."""
    rows = read_crosswalk_file(BUILTIN_CROSSWALK) + plugin_rows() if builtin else []
    if extra_path is not None:
        rows += read_crosswalk_file(extra_path)
    return Crosswalk.of(rows)


def plugin_rows() -> list[tuple[str, str, str]]:
    """The rows each installed source ships for its own ids (`Source.known_assets`)."""
    return [
        (group, name, source_asset_id)
        for name, source in source_classes().items()
        for source_asset_id, group in source.known_assets.items()
    ]
