"""GET /stats: per source, what its runs processed and how they went."""

from __future__ import annotations

from fastapi import APIRouter

from kasparro.api.errors import problem_responses
from kasparro.api.queries import runs as runs_queries
from kasparro.api.routes import EngineDep, SettingsDep
from kasparro.api.run_schemas import SourceStats, Stats
from kasparro.etl.runner import enabled_sources
from kasparro.sources.registry import source_names

router = APIRouter(tags=["stats"])


@router.get(
    "/stats",
    response_model=Stats,
    summary="ETL statistics per source",
    responses=problem_responses(429, 500, 503),
)
def stats(engine: EngineDep, settings: SettingsDep) -> Stats:
    """Every enabled source, and any other source that has runs or data.

    The `last_run_*` fields describe the latest *finished* run; `running` says whether one is in
    progress. `records_processed_total` adds up every run, failed ones included.
    """
    enabled = set(enabled_sources(settings))
    with engine.connect() as conn:
        quarantined = runs_queries.quarantine_by_source(conn)
        reasons = runs_queries.quarantine_reasons_by_source(conn)
        linked = runs_queries.asset_sources_by_source(conn)
        present = (
            enabled | set(runs_queries.sources_with_runs(conn)) | set(linked) | set(quarantined)
        )
        names = [name for name in source_names() if name in present]
        names += sorted(present - set(source_names()))
        runs = runs_queries.source_runs(conn, names)
        total_assets = runs_queries.assets_total(conn)
    result: dict[str, SourceStats] = {}
    for name in names:
        info = runs[name]
        last = info.latest_finished
        result[name] = SourceStats(
            enabled=name in enabled,
            runs_total=info.runs_total,
            last_run_id=last["run_id"] if last else None,
            last_run_status=last["status"] if last else None,
            last_run_records_processed=last["records_processed"] if last else None,
            last_run_duration_ms=last["duration_ms"] if last else None,
            records_processed_total=info.records_processed_total,
            last_success_at=info.last_success_at,
            last_failure_at=info.last_failure_at,
            running=info.running,
            quarantined=quarantined.get(name, 0),
            quarantine_reasons=reasons.get(name, {}),
            assets=linked.get(name, 0),
        )
    return Stats(assets_total=total_assets, sources=result)
