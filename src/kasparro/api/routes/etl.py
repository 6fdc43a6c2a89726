"""POST /etl/run: start ETL runs now (admin only)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Security, status
from fastapi.security import APIKeyHeader

from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.routes import SettingsDep, WriteEngineDep
from kasparro.api.run_schemas import StartedRun, StartedRuns
from kasparro.api.schemas import SourceName
from kasparro.etl.runner import SourceBusy, UnknownSource, enabled_sources, start_runs
from kasparro.logging import get_logger

router = APIRouter(tags=["etl"])
log = get_logger(__name__)

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Equal to the server's ADMIN_API_KEY.",
    scheme_name="AdminApiKey",
)


def require_admin(
    settings: SettingsDep, sent: Annotated[str | None, Security(api_key_header)]
) -> None:
    """401 without a key, 403 with a wrong one, 503 when the server has no key configured."""
    configured = settings.admin_api_key.get_secret_value() if settings.admin_api_key else ""
    if not configured:
        raise ProblemError(
            503,
            "write endpoints are disabled: set ADMIN_API_KEY to enable write endpoints",
            slug="writes-disabled",
            title="Write endpoints disabled",
        )
    if not sent:
        raise ProblemError(
            401,
            "send the admin API key in the X-API-Key header",
            slug="missing-api-key",
            headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
        )
    if not hmac.compare_digest(sent.encode(), configured.encode()):
        raise ProblemError(403, "the X-API-Key header is not the admin API key", slug="bad-api-key")


def source_busy(exc: SourceBusy) -> ProblemError:
    """409 naming the source and the run that holds it (starting runs or a replay)."""
    return ProblemError(
        409,
        f"{exc.source} is already running (run {exc.run_id})",
        slug="source-busy",
        title="Source already running",
        source=exc.source,
        run_id=exc.run_id,
    )


def is_admin(settings: SettingsDep, sent: str | None) -> bool:
    """True when a key is configured and `sent` is it (for what only admins may read)."""
    configured = settings.admin_api_key.get_secret_value() if settings.admin_api_key else ""
    return bool(configured and sent) and hmac.compare_digest(
        (sent or "").encode(), configured.encode()
    )


@router.post(
    "/etl/run",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=StartedRuns,
    summary="Start ETL runs now",
    dependencies=[Depends(require_admin)],
    responses=problem_responses(400, 401, 403, 409, 422, 429, 500, 503),
)
def run_etl(
    engine: WriteEngineDep,
    settings: SettingsDep,
    source: Annotated[
        list[SourceName] | None,
        Query(description="Source to run (repeatable); none means every enabled source."),
    ] = None,
) -> StartedRuns:
    """Starts the runs in the background and answers at once with their ids (follow /runs).

    Several sources start together or not at all: 409 if any of them is already running.
    """
    enabled = enabled_sources(settings)
    names = list(dict.fromkeys(source)) if source else enabled
    disabled = [name for name in names if name not in enabled]
    if disabled:
        raise ProblemError(
            400,
            f"source(s) {', '.join(disabled)} disabled in this deployment "
            f"(enabled: {', '.join(enabled) or 'none'})",
            slug="source-disabled",
            param="source",
        )
    try:
        started = start_runs(engine, settings, names, trigger="api") if names else []
    except UnknownSource as exc:  # the query's enum already refuses these
        raise ProblemError(400, str(exc), slug="unknown-source", param="source") from None
    except SourceBusy as exc:
        raise source_busy(exc) from None
    log.info("etl_runs_requested", runs=[r.run_id for r in started])
    return StartedRuns(runs=[StartedRun(run_id=r.run_id, source=r.source) for r in started])
