"""What the fake upstreams share: plans, keys, pending faults, request counters, admin routes."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kasparro.fakes.universe import Universe

# A fake vendor: its source's name (built-in fakes and those a source names, fakes/plugin.py).
Vendor = str
FaultKind = Literal["rate_limit", "server_error", "slow", "timeout", "truncated", "html", "drift"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
RETYPES = ("string", "int", "float", "null", "bool", "list", "object")

_CLOUDFLARE_1015 = """<!DOCTYPE html>
<html lang="en-US">
<head><title>Access denied | {host} used Cloudflare to restrict access</title></head>
<body>
<div id="cf-wrapper">
  <h1><span class="cf-error-type">Error</span> <span class="cf-error-code">1015</span></h1>
  <h2 class="cf-subheadline">You are being rate limited</h2>
  <p>The owner of this website ({host}) has banned you temporarily from accessing
  this website.</p>
  <p>error code: 1015</p>
  <span class="cf-footer-item">Cloudflare Ray ID: <strong>8f2c1d3a4b5e6f70</strong></span>
</div>
</body>
</html>
"""


@dataclass
class Fault:
    """One injected misbehaviour of a data endpoint.

    `drift` persists until cleared (it reshapes every item: `rename`, `drop`, `retype` by field
    name, dotted for nested fields such as `quotes.USD.price`); every other kind fires `times`
    times. `vendor` limits a fault to one app, `page` to one CoinGecko page.
    """

    kind: FaultKind
    times: int = 1
    page: int | None = None
    vendor: Vendor | None = None
    status: int | None = None  # server_error (500), html (503)
    retry_after: int | None = None  # rate_limit: seconds; CoinGecko always sends one (default 1)
    seconds: float | None = None  # slow (1.0) and timeout (30.0): the delay before answering
    rename: dict[str, str] = field(default_factory=dict)
    drop: list[str] = field(default_factory=list)
    retype: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.times < 1:
            raise ValueError("times must be >= 1")
        for path, kind in self.retype.items():
            if kind not in RETYPES:
                raise ValueError(f"retype {path}: unknown type {kind!r}; known: {RETYPES}")

    def matches(self, vendor: Vendor, page: int | None) -> bool:
        if self.vendor is not None and self.vendor != vendor:
            return False
        return self.page is None or self.page == page

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass
class FakeState:
    """Everything both fake apps share; safe to change from tests while the servers run."""

    universe: Universe
    coingecko_plan: Literal["public", "demo", "pro"] = "public"
    coingecko_key: str | None = None
    coingecko_rate_limit: int | None = None  # calls per minute; None: no limit
    coinpaprika_plan: Literal["free", "paid"] = "paid"  # free: top 2,000, no circulating supply
    coinpaprika_key: str | None = None  # when set, `Authorization: <key>` is required
    coinpaprika_rate_limit: float | None = None  # calls per second; None: no limit
    coinpaprika_quota: int | None = None  # calls in all (the monthly quota); then 402
    coinmarketcap_key: str | None = None  # None: any key; a call without one is refused
    coinmarketcap_rate_limit: int | None = None  # calls per minute; None: no limit
    coinmarketcap_credits: int | None = None  # the monthly allowance; None: no limit
    coinmarketcap_credits_used: int = 0
    coincap_key: str | None = None  # None: any key; a call without one is refused
    coincap_rate_limit: int | None = None  # calls per minute; None: no limit
    # A per-minute limit enforced over this shorter window, pro rata (600/min over 5 s: 50 per
    # 5 s): stricter than the vendor, so a client that bursts is caught within a short crawl.
    rate_window_seconds: float = 60.0
    # How long each data page takes to answer (the vendor's own latency; loopback has none).
    page_seconds: float = 0.0
    # Requests refused by an enforced rate limit (not by an injected fault), per vendor.
    rate_limited: Counter[str] = field(default_factory=Counter)
    # Data pages being answered right now, and the most at once: what a concurrent crawl reached.
    pages_in_flight: int = 0
    peak_pages_in_flight: int = 0
    faults: list[Fault] = field(default_factory=list)
    # Per vendor, raw JSON objects served after the universe's items, exactly as given (bytes
    # that are not UTF-8, `\u0000`, `1e400` included): hostile records for tests and the soak.
    extra_items: dict[str, list[bytes]] = field(default_factory=dict)
    # Per vendor, the state a plugged-in fake keeps of its own (fakes/plugin.py).
    plugins: dict[str, Any] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _calls: dict[str, deque[float]] = field(default_factory=dict, repr=False)

    def add_faults(self, faults: Iterable[Fault]) -> None:
        with self.lock:
            self.faults.extend(faults)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def record(self, vendor: Vendor, request: Request) -> None:
        with self.lock:
            self.requests[f"{vendor} {request.url.path}"] += 1
            self.log.append(
                {
                    "vendor": vendor,
                    "path": request.url.path,
                    "query": request.url.query,
                    "at": time.monotonic(),
                }
            )

    def count(self, vendor: Vendor, path: str) -> int:
        with self.lock:
            return self.requests[f"{vendor} {path}"]

    def take_fault(self, vendor: Vendor, page: int | None = None) -> Fault | None:
        """The first pending one-shot fault that matches, used up by one; drift is not taken."""
        with self.lock:
            for i, fault in enumerate(self.faults):
                if fault.kind == "drift" or not fault.matches(vendor, page):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[i]
                return fault
            return None

    def drifts(self, vendor: Vendor, page: int | None = None) -> list[Fault]:
        with self.lock:
            return [f for f in self.faults if f.kind == "drift" and f.matches(vendor, page)]

    def over_limit(self, key: str, calls: float | None, per_seconds: float) -> int | None:
        """Sliding-window limiter: None when allowed, else whole seconds until the next slot."""
        if calls is None:
            return None
        now = time.monotonic()
        with self.lock:
            window = self._calls.setdefault(key, deque())
            while window and window[0] <= now - per_seconds:
                window.popleft()
            if len(window) >= max(1, int(calls)):
                self.rate_limited[key.split(" ")[0]] += 1
                return max(1, int(window[0] + per_seconds - now + 0.999))
            window.append(now)
            return None

    def over_minute_limit(
        self, vendor: Vendor, calls_per_minute: float | None, api_key: str | None
    ) -> int | None:
        """`over_limit` for a per-minute plan limit, counted per API key like the vendor, over
        `rate_window_seconds`."""
        if calls_per_minute is None:
            return None
        window = self.rate_window_seconds
        return self.over_limit(f"{vendor} {api_key or ''}", calls_per_minute * window / 60, window)


async def page_latency(state: FakeState) -> None:
    """The vendor's time to answer a data page (`page_seconds`), after its limit is counted."""
    with state.lock:
        state.pages_in_flight += 1
        state.peak_pages_in_flight = max(state.peak_pages_in_flight, state.pages_in_flight)
    try:
        await asyncio.sleep(state.page_seconds)
    finally:
        with state.lock:
            state.pages_in_flight -= 1


# --- applying faults -----------------------------------------------------------------------------


async def delay(fault: Fault) -> None:
    """`slow` and `timeout` wait, then the request is answered normally."""
    default = 30.0 if fault.kind == "timeout" else 1.0
    await asyncio.sleep(fault.seconds if fault.seconds is not None else default)


def html_page(fault: Fault, host: str) -> Response:
    """A Cloudflare page in place of JSON (503 unless `status` says otherwise, e.g. 200)."""
    return Response(
        _CLOUDFLARE_1015.format(host=host),
        status_code=fault.status or 503,
        media_type="text/html",
        headers={"server": "cloudflare", "cf-ray": "8f2c1d3a4b5e6f70-FRA"},
    )


def truncated(body: bytes, status: int = 200) -> Response:
    """A 200 whose JSON is cut in half (a dropped connection behind a proxy)."""
    return Response(
        body[: max(1, len(body) // 2)], status_code=status, media_type="application/json"
    )


def _retyped(value: Any, kind: str) -> Any:
    if kind == "string":
        return "" if value is None else str(value)
    if kind == "null":
        return None
    if kind == "bool":
        return bool(value)
    if kind == "list":
        return [value]
    if kind == "object":
        return {"value": value}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if kind == "int" else number


def _parent(item: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    """The (copied) dict holding `path`'s last part, in an item already copied at the top."""
    parts = path.split(".")
    node: Any = item
    for part in parts[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            return None, parts[-1]
        child = dict(child)
        node[part] = child
        node = child
    return node, parts[-1]


def drift_item(item: dict[str, Any], drifts: Iterable[Fault]) -> dict[str, Any]:
    """A copy of `item` with every drift applied (the original stays untouched)."""
    out = dict(item)
    for fault in drifts:
        for old, new in fault.rename.items():
            parent, key = _parent(out, old)
            if parent is not None and key in parent:
                renamed = {(new.split(".")[-1] if k == key else k): v for k, v in parent.items()}
                parent.clear()
                parent.update(renamed)
        for path in fault.drop:
            parent, key = _parent(out, path)
            if parent is not None:
                parent.pop(key, None)
        for path, kind in fault.retype.items():
            parent, key = _parent(out, path)
            if parent is not None and key in parent:
                parent[key] = _retyped(copy.copy(parent[key]), kind)
    return out


def drifted(items: list[dict[str, Any]], drifts: list[Fault]) -> list[dict[str, Any]]:
    return [drift_item(item, drifts) for item in items] if drifts else items


# --- admin routes ---------------------------------------------------------------------------------


def with_extra_items(body: bytes, extra: list[bytes]) -> bytes:
    """A JSON array's bytes with `extra` raw items appended."""
    if not extra:
        return body
    head = body.rstrip()[:-1].rstrip()
    separator = b"" if head.endswith(b"[") else b","
    return head + separator + b",".join(extra) + b"]"


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def admin_routes(state: FakeState) -> list[Route]:
    """`/__admin__/faults` (GET, POST a list, DELETE), `.../advance`, `.../requests`."""

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_faults()
            return JSONResponse({"faults": []})
        if request.method == "POST":
            try:
                payload = orjson.loads(await request.body())
                entries = payload if isinstance(payload, list) else [payload]
                new = [Fault.from_json(entry) for entry in entries]
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            state.add_faults(new)
        with state.lock:
            return JSONResponse({"faults": [f.to_json() for f in state.faults]})

    async def advance(request: Request) -> Response:
        try:
            seconds = int(request.query_params.get("seconds", "600"))
            await asyncio.to_thread(state.universe.advance, seconds)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        universe = state.universe
        return JSONResponse({"snapshot": universe.snapshot, "clock": universe.clock.isoformat()})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            with state.lock:
                state.requests.clear()
                state.log.clear()
                state.rate_limited.clear()
                state.peak_pages_in_flight = 0
        with state.lock:
            return JSONResponse(
                {
                    "counts": dict(state.requests),
                    "log": list(state.log),
                    "rate_limited": dict(state.rate_limited),
                    "peak_pages_in_flight": state.peak_pages_in_flight,
                }
            )

    return [
        Route("/__admin__/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/__admin__/advance", advance, methods=["POST"]),
        Route("/__admin__/requests", requests, methods=["GET", "DELETE"]),
    ]
