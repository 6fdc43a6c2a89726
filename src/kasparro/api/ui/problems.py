"""The console's data problems: quarantined records grouped by reason and filterable, drift
events, anomalies and identity reviews, with the admin actions the API offers beside them.

The actions are forms the page's script sends to the JSON API itself (POST /etl/run,
POST /quarantine/replay, the identity endpoints) with the admin key from the browser session:
the server never sees the key outside those requests and never writes it into a page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from kasparro.api.inputs import NO_CONTROL
from kasparro.api.queries import events as events_queries
from kasparro.api.queries import identity as identity_queries
from kasparro.api.queries import runs as runs_queries
from kasparro.api.routes import EngineDep, SettingsDep
from kasparro.api.ui import extensions, queries
from kasparro.api.ui.render import PREFIX, page
from kasparro.db.schema import anomalies, drift_events
from kasparro.etl.runner import enabled_sources
from kasparro.models import SOURCES

router = APIRouter(prefix=PREFIX, include_in_schema=False)

RECORDS_SHOWN = 50
EVENTS_SHOWN = 20
REVIEWS_SHOWN = 50
PAYLOAD_CHARS = 600


@router.get("/problems", response_class=HTMLResponse)
def problems(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    source: Annotated[str | None, Query(max_length=32, pattern=NO_CONTROL)] = None,
    reason_code: Annotated[str | None, Query(max_length=32, pattern=NO_CONTROL)] = None,
) -> HTMLResponse:
    # Empty form fields mean "any"; a source the service does not know matches nothing.
    source = source or None
    reason_code = reason_code or None
    with engine.connect() as conn:
        reasons = runs_queries.quarantine_reasons_by_source(conn)
        held = queries.held_records(
            conn, source=source, reason_code=reason_code, limit=RECORDS_SHOWN
        )
        drift, drift_total = events_queries.events_page(
            conn, drift_events, equal={"source": source}, limit=EVENTS_SHOWN, offset=0
        )
        found, found_total = events_queries.events_page(
            conn, anomalies, equal={"source": source}, limit=EVENTS_SHOWN, offset=0
        )
        reviews, reviews_total = identity_queries.reviews_page(
            conn, status="open", source=None, limit=REVIEWS_SHOWN
        )
    groups = sorted(
        (
            (code, name, n)
            for name, by_code in reasons.items()
            for code, n in by_code.items()
            if source is None or name == source
        ),
        key=lambda group: (-group[2], group[0], group[1]),
    )
    # The groups count every record: the total of those the filters choose, without a count.
    held_total = sum(n for code, _, n in groups if reason_code is None or code == reason_code)
    for record in held:
        text = str(record["payload"])
        record["payload_text"] = (
            text if len(text) <= PAYLOAD_CHARS else text[:PAYLOAD_CHARS] + " ..."
        )
    return page(
        request,
        "problems.html",
        title="Data problems",
        nav="problems",
        groups=groups,
        quarantined=held,
        quarantined_total=held_total,
        drift=drift,
        drift_total=drift_total,
        anomalies=found,
        anomalies_total=found_total,
        reviews=reviews,
        reviews_total=reviews_total,
        sources=SOURCES,
        enabled=enabled_sources(settings),
        chosen={"source": source or "", "reason_code": reason_code or ""},
        curation=extensions.curation_actions(request.app),
    )
