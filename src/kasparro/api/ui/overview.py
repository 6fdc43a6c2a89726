"""The console's overview: every source's freshness, last run, trend, and what is failing now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from kasparro.api.queries import runs as runs_queries
from kasparro.api.routes import EngineDep, SettingsDep
from kasparro.api.ui import queries
from kasparro.api.ui.freshness import FreshnessCache
from kasparro.api.ui.render import PREFIX, page
from kasparro.api.ui.render import age as render_age
from kasparro.etl.runner import enabled_sources

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@dataclass
class SourceCard:
    name: str
    enabled: bool
    latest: dict[str, Any] | None  # the run in progress, else the latest finished one
    observation_age_seconds: float | None
    stale: bool  # as /health: runs were attempted, and none succeeded within stale_after
    stale_after_seconds: float = 3600.0
    trend: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trend_values(self) -> list[float]:
        return [float(run["records_processed"]) for run in self.trend]

    @property
    def data_problem(self) -> str | None:
        """What is wrong with an enabled source's data: none stored, or none lately."""
        if not self.enabled:
            return None  # switched off: nobody expects new data from it
        age = self.observation_age_seconds
        if age is None:
            if self.latest is None:
                return "No run yet: it has no data."
            return "No data: none of its runs has stored an observation."
        if age > self.stale_after_seconds:
            return (
                f"Its newest observation is {render_age(age)} old (more than "
                f"SOURCE_STALE_SECONDS, {render_age(self.stale_after_seconds)}): its data is stale."
            )
        return None

    @property
    def state(self) -> str:
        """ok / warn / fail / idle: the card's colour. Healthy (ok) means the last run did not
        fail and the source has data, fresh; a source with no data or old data is not."""
        if self.latest is not None and self.latest["status"] in ("failed", "interrupted"):
            return "fail"
        if self.data_problem is not None:
            return "warn"
        if self.latest is None:
            return "idle"  # disabled, never run
        return "warn" if self.latest["status"] == "degraded" or self.stale else "ok"

    @property
    def problems(self) -> list[str]:
        """What is wrong with the source now, in sentences a person reads at a glance."""
        latest = self.latest
        data = [self.data_problem] if self.data_problem is not None else []
        if latest is None:
            return data
        said: list[str] = []
        status = latest["status"]
        if status == "failed":
            where = f" at {latest['failure_point']}" if latest.get("failure_point") else ""
            said.append(f"The last run failed{where}: {latest.get('error') or 'no reason given'}.")
        elif status == "interrupted":
            said.append("The last run was interrupted: its process ended before it finished.")
        elif status == "degraded":
            said.append(
                f"The last run loaded what it could trust and quarantined "
                f"{latest['records_quarantined']:,} record(s)."
            )
        if self.stale:
            said.append("No successful run within SOURCE_STALE_SECONDS.")
        return said + data


def _cache(request: Request) -> FreshnessCache:
    cache = getattr(request.app.state, "ui_freshness", None)
    if not isinstance(cache, FreshnessCache):
        cache = request.app.state.ui_freshness = FreshnessCache()
    return cache


@router.get("", response_class=HTMLResponse)
def overview(request: Request, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    """What /health and /stats say, per source, with each source's trend."""
    enabled = enabled_sources(settings)
    now = datetime.now(UTC)
    stale_after = timedelta(seconds=settings.source_stale_seconds)
    try:
        with engine.connect() as conn:
            names = list(dict.fromkeys([*enabled, *runs_queries.sources_with_runs(conn)]))
            runs = runs_queries.source_runs(conn, names)
            newest = _cache(request).newest(conn, names, runs)
            trends = {name: queries.recent_runs(conn, name) for name in names}
    except sa.exc.SQLAlchemyError:
        return page(request, "overview.html", title="Overview", nav="overview", cards=None)
    cards = []
    for name in names:
        info = runs[name]
        latest = info.latest if info.running else info.latest_finished
        seen = newest.get(name)
        cards.append(
            SourceCard(
                name=name,
                enabled=name in enabled,
                latest=latest,
                observation_age_seconds=(now - seen).total_seconds() if seen else None,
                # As /health: runs were attempted, and none succeeded lately.
                stale=info.latest is not None
                and not info.running
                and (info.last_success_at is None or now - info.last_success_at > stale_after),
                stale_after_seconds=stale_after.total_seconds(),
                trend=trends[name],
            )
        )
    return page(
        request,
        "overview.html",
        title="Overview",
        nav="overview",
        cards=cards,
        failing=[card for card in cards if card.state in ("fail", "warn")],
        stale_after_seconds=stale_after.total_seconds(),
        running=any(runs[name].running for name in names),
    )
