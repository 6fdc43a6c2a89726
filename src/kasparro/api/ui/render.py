"""Rendering the console's pages: one auto-escaping Jinja2 environment, the filters the templates
use to say times, ages and counts in words, and the security headers every page carries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from kasparro.api.errors import request_id_of
from kasparro.api.routes import elapsed_ms

PREFIX = "/ui"
STATIC_PREFIX = f"{PREFIX}/static"

# Scripts and styles only from the service's own files: no inline script, no inline style
# attribute, nothing from another host; the admin key goes only to this origin (connect-src).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def utc(value: datetime | str | None) -> datetime | None:
    """Aware UTC; naive values (SQLite, aggregates) are UTC already."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def when(value: datetime | str | None) -> str:
    moment = utc(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"


def iso(value: datetime | str | None) -> str:
    moment = utc(value)
    return moment.isoformat() if moment else ""


def age(seconds: float | None) -> str:
    """`42 s`, `5 min`, `3 h 10 min`, `2 d 4 h`."""
    if seconds is None:
        return "no data"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def duration(milliseconds: float | None) -> str:
    if milliseconds is None:
        return "-"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return age(milliseconds / 1000) if milliseconds >= 60_000 else f"{milliseconds / 1000:.1f} s"


def count(value: int | float | None) -> str:
    return "-" if value is None else f"{value:,}"


def price(value: float | None) -> str:
    """A USD price with the digits that matter: $63,412.50, $0.9998, $0.00001234."""
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    magnitude = abs(value)
    if magnitude >= 1:
        return f"${value:,.2f}"
    return f"${value:.{max(4, -int(f'{magnitude:e}'.split('e')[1]) + 3)}f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}%"


def sparkline(values: Sequence[float], width: int = 120, height: int = 28) -> str:
    """SVG polyline points for `values` (oldest first), scaled into width x height."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    points = []
    for index, value in enumerate(values):
        x = index * step if len(values) > 1 else width / 2
        y = height - 2 - (value - low) / span * (height - 4)
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("kasparro.api.ui", "templates"),
    autoescape=True,  # every value is escaped unless a template says otherwise (none does)
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters.update(
    when=when, iso=iso, age=age, duration=duration, count=count, price=price, percent=percent
)
_environment.globals.update(sparkline=sparkline)


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The page `template` rendered with `context`, with the console's security headers."""
    root = str(request.scope.get("root_path", ""))
    html = _environment.get_template(template).render(
        ui=root + PREFIX,
        static=root + STATIC_PREFIX,
        api=root,
        path=request.url.path,
        request_id=request_id_of(request.scope),
        **context,
    )
    # The server's own time for the page (queries and rendering), for browsers' developer
    # tools and for bench/ui.py.
    timing = f"app;dur={elapsed_ms(request):.1f}"
    return HTMLResponse(
        html, status_code=status_code, headers={**SECURITY_HEADERS, "Server-Timing": timing}
    )
