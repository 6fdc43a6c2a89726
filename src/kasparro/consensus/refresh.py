"""When reference prices are computed: after each ETL run (for the assets it changed) and on
demand (CLI, admin endpoint), with the method's parameters from the settings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from kasparro.config import Settings
from kasparro.consensus.method import Parameters
from kasparro.consensus.store import ComputeSummary, compute
from kasparro.db.schema import asset_sources
from kasparro.load.sql import id_chunks, in_list
from kasparro.logging import get_logger

log = get_logger(__name__)


def parameters(settings: Settings) -> Parameters:
    return Parameters(
        freshness=timedelta(seconds=settings.consensus_freshness_seconds),
        outlier_k=settings.consensus_outlier_k,
        outlier_floor_bps=settings.consensus_outlier_floor_bps,
        max_dispersion_bps=settings.consensus_max_dispersion_bps,
        frozen_observations=settings.consensus_frozen_observations,
    )


def refresh_after_runs(engine: Engine, settings: Settings, run_ids: Sequence[str]) -> None:
    """Recompute the reference price of every asset whose latest values these runs changed
    (the others' inputs, hence their prices, did not move). Never raises: a failure is logged
    and the next run, or `kasparro consensus compute`, catches up."""
    try:
        with engine.connect() as conn:
            assets: set[str] = set()
            for part in id_chunks(conn, list(run_ids)):
                assets.update(
                    conn.scalars(
                        sa.select(asset_sources.c.asset_id)
                        .distinct()
                        .where(in_list(conn, asset_sources.c.run_id, part))
                    )
                )
        if assets:
            compute(engine, parameters(settings), asset_ids=sorted(assets))
    except Exception as exc:
        log.error(
            "consensus_refresh_failed",
            runs=list(run_ids),
            error_type=type(exc).__name__,
            exc_info=exc,
        )


def compute_now(
    engine: Engine, settings: Settings, asset_ids: Sequence[str] | None = None
) -> ComputeSummary:
    """Compute every asset's reference price now (or `asset_ids`'); errors propagate."""
    return compute(engine, parameters(settings), asset_ids=asset_ids)
