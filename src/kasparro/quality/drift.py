"""Schema drift: each batch of an API source compared with the item schema it is expected to have.

Finds fields that went missing, new fields, type changes, and renames. A rename is a missing
field paired with a new one, scored on how alike the names are, whether the kinds fit, and
whether the new field's values satisfy the missing field's anchors (a price must lie between the
day's low and high). Confident renames are applied to the copy normalization reads; the raw
payload is stored as received. Anything less is left alone: records then fail validation and are
quarantined, and the run is marked degraded. A price is never read from a guessed field.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from kasparro.quality.expected import Anchor, FieldSpec, Kind, expected_schema

# Below this share of items a field is "sometimes absent", which real data does; not drift.
PRESENCE = 0.5
# Drift is a share of a batch, so an evenly spaced sample of this many items measures it well and
# keeps detection a small constant per batch; counts in events are scaled back to the batch.
SAMPLE = 200
ANCHOR_TOLERANCE = 0.02  # 2 %: rounding and the seconds between the vendor's computations


@dataclass(frozen=True, slots=True)
class DriftEvent:
    kind: str  # missing | new | type_change | rename
    field: str
    detail: str
    confidence: float = 1.0
    action: str = "noted"  # noted | applied | quarantined
    items: int = 0


@dataclass(frozen=True, slots=True)
class DriftReport:
    events: tuple[DriftEvent, ...] = ()
    renames: Mapping[str, str] = field(default_factory=dict)  # new path -> expected path

    @property
    def degraded(self) -> bool:
        return any(e.action == "quarantined" for e in self.events)

    def apply(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload as normalization should read it: confident renames undone."""
        if not self.renames:
            return payload
        flat = flatten(payload, parents([*self.renames, *self.renames.values()]))
        for new, old in self.renames.items():
            if new in flat and old not in flat:
                flat[old] = flat.pop(new)
        return unflatten(flat)


def kind_of(value: Any) -> Kind:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        if value == "":
            return "empty_string"
        try:
            float(value)
        except ValueError:
            return "string"
        return "numeric_string"
    if isinstance(value, list):
        return "array"
    return "object"


def parents(paths: Iterable[str]) -> frozenset[str]:
    """The objects a shape reaches into: `quotes` and `quotes.USD` for `quotes.USD.price`."""
    return frozenset(
        ".".join(parts[:end])
        for parts in (p.split(".") for p in paths)
        for end in range(1, len(parts))
    )


def flatten(item: Mapping[str, Any], nested: frozenset[str], prefix: str = "") -> dict[str, Any]:
    """With `nested` = {"quotes", "quotes.USD"}: `{"quotes": {"USD": {"price": 1}}}` ->
    `{"quotes.USD.price": 1}`; other objects stay whole."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path in nested:
            flat.update(flatten(value, nested, f"{path}."))
        else:
            flat[path] = value
    return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for path, value in flat.items():
        node = item
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return item


def detect(
    source: str,
    items: Sequence[Mapping[str, Any]],
    rename_confidence: float = 0.8,
    *,
    schema: Mapping[str, FieldSpec] | None = None,
) -> DriftReport:
    """Compare a batch's items with the source's expected schema (on a sample of SAMPLE items);
    `schema` is the source's declared shape, looked up by its name when not given."""
    schema = expected_schema(source) if schema is None else schema
    if schema is None or not items:
        return DriftReport()
    step = max(1, -(-len(items) // SAMPLE))  # ceil: at most SAMPLE items, spread evenly
    nested = parents(schema)
    flats = [flatten(item, nested) for item in items[::step]]
    scale = len(items) / len(flats)

    def in_batch(sampled: int) -> int:
        return round(sampled * scale)

    presence = Counter(path for flat in flats for path in flat)
    share = {path: n / len(flats) for path, n in presence.items()}

    missing = [
        path
        for path, spec in schema.items()
        if spec.always_present and share.get(path, 0.0) < PRESENCE
    ]
    new = sorted(path for path in share if path not in schema and share[path] >= PRESENCE)
    events: list[DriftEvent] = []
    renames: dict[str, str] = {}

    for path in missing:
        spec = schema[path]
        best = max(
            ((_rename_confidence(path, spec, cand, flats), cand) for cand in new),
            default=(0.0, ""),
        )
        confidence, candidate = best
        affected = in_batch(len(flats) - presence.get(path, 0))
        if candidate and confidence >= rename_confidence:
            renames[candidate] = path
            new.remove(candidate)
            events.append(
                DriftEvent(
                    "rename",
                    path,
                    f"{path} is now {candidate}",
                    round(confidence, 3),
                    "applied",
                    affected,
                )
            )
            continue
        guess = f"; closest new field {candidate} at {confidence:.2f}" if candidate else ""
        events.append(
            DriftEvent(
                "missing",
                path,
                f"{path} absent from {affected} of {len(items)} items{guess}",
                round(confidence, 3) if candidate else 1.0,
                "quarantined" if spec.required else "noted",
                affected,
            )
        )

    for path in new:
        events.append(
            DriftEvent("new", path, f"new field {path}", 1.0, "noted", in_batch(presence[path]))
        )

    for path, spec in schema.items():
        kinds = Counter(kind_of(flat[path]) for flat in flats if path in flat)
        unexpected = {k: n for k, n in kinds.items() if k not in spec.kinds and not _fits(k, spec)}
        if unexpected and sum(unexpected.values()) / max(1, sum(kinds.values())) >= PRESENCE:
            found = ", ".join(f"{k} x{in_batch(n)}" for k, n in sorted(unexpected.items()))
            events.append(
                DriftEvent(
                    "type_change",
                    path,
                    f"{path} expected {'/'.join(sorted(spec.kinds))}, got {found}",
                    1.0,
                    "quarantined" if spec.role else "noted",
                    in_batch(sum(unexpected.values())),
                )
            )
    return DriftReport(tuple(events), renames)


def _fits(kind: Kind, spec: FieldSpec) -> bool:
    # A number sent as a numeric string parses the same; not worth an event.
    return kind == "numeric_string" and "number" in spec.kinds and spec.role is None


def _rename_confidence(
    path: str, spec: FieldSpec, candidate: str, flats: Sequence[Mapping[str, Any]]
) -> float:
    """0..1: alike names, fitting kinds and (when the field has anchors) values that agree."""
    name_score = SequenceMatcher(None, _leaf(path), _leaf(candidate)).ratio()
    values = [flat[candidate] for flat in flats if candidate in flat]
    kind_score = sum(1 for v in values if kind_of(v) in spec.kinds) / max(1, len(values))
    if kind_score < 0.9:
        return round(0.3 * name_score * kind_score, 3)  # a field of another kind is not it
    if not spec.anchors:
        return round(0.5 * name_score + 0.3 * kind_score, 3)  # never above 0.8 on a name alone
    checked = agreed = 0
    for flat in flats:
        value = _number(flat.get(candidate))
        if value is None:
            continue
        for anchor in spec.anchors:
            verdict = _anchor_holds(anchor, value, flat)
            if verdict is not None:
                checked += 1
                agreed += verdict
    if checked == 0:
        return round(0.5 * name_score + 0.3 * kind_score, 3)
    return round(0.2 * name_score + 0.1 * kind_score + 0.7 * agreed / checked, 3)


def _anchor_holds(anchor: Anchor, value: float, flat: Mapping[str, Any]) -> bool | None:
    first, second = _number(flat.get(anchor.first)), _number(flat.get(anchor.second))
    if first is None or second is None:
        return None
    if anchor.rule == "between":
        low, high = first * (1 - ANCHOR_TOLERANCE), second * (1 + ANCHOR_TOLERANCE)
        return low <= value <= high
    if anchor.rule == "ratio":
        expected = first / second if second else None
    elif anchor.rule == "product":
        expected = first * second
    else:  # off_ath: an all-time high and the percentage below it
        expected = first * (1 + second / 100)
    if not expected:
        return None
    return abs(value - expected) / abs(expected) <= 5 * ANCHOR_TOLERANCE


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _leaf(path: str) -> str:
    return path.rsplit(".", 1)[-1].lower()
