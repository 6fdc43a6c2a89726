"""Named fault points for recovery drills, switched on by KASPARRO_FAULTS (never in production).

Format: entries separated by `;`, each `SOURCE:POINT[:KEY=VALUE...]`, for example
`SOURCE:mid_batch:page=3` or `SOURCE:after_checkpoint:batch=1:action=kill`.
KEYS: `batch` (1-based batch of the run), `page` (a paged source's page: its batch label is
`page N`), `action` (`raise`, the default,
or `kill`: the process dies on the spot with SIGKILL, as an OOM kill or a power cut would).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

POINTS = ("after_fetch", "mid_batch", "before_checkpoint", "after_checkpoint")


class InjectedFault(RuntimeError):
    """Raised at a fault point; the run fails exactly as it would on a real error there."""


@dataclass(frozen=True, slots=True)
class Fault:
    source: str
    point: str
    conditions: dict[str, str] = field(default_factory=dict)
    action: str = "raise"

    def matches(self, source: str, point: str, batch: int, label: str) -> bool:
        if (self.source, self.point) != (source, point):
            return False
        if "batch" in self.conditions and int(self.conditions["batch"]) != batch:
            return False
        return not ("page" in self.conditions and label != f"page {self.conditions['page']}")


def parse_faults(spec: str) -> tuple[Fault, ...]:
    faults: list[Fault] = []
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        source, _, rest = entry.partition(":")
        point, *options = rest.split(":")
        if not source or point not in POINTS:
            raise ValueError(
                f"KASPARRO_FAULTS: bad entry {entry!r}; points are {', '.join(POINTS)}"
            )
        conditions = dict(option.split("=", 1) for option in options if "=" in option)
        action = conditions.pop("action", "raise")
        if action not in ("raise", "kill") or set(conditions) - {"batch", "page"}:
            raise ValueError(f"KASPARRO_FAULTS: bad options in {entry!r}")
        faults.append(Fault(source, point, conditions, action))
    return tuple(faults)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    faults: tuple[Fault, ...] = ()

    @classmethod
    def from_spec(cls, spec: str) -> FaultPlan:
        return cls(parse_faults(spec))

    def hit(self, source: str, point: str, *, batch: int, label: str) -> None:
        for fault in self.faults:
            if fault.matches(source, point, batch, label):
                if fault.action == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise InjectedFault(f"injected fault at {point} ({label})")
