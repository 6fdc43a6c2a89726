"""`kasparro serve`: migrate, then serve the API with the scheduled ETL under uvicorn.

WEB_CONCURRENCY > 1 runs that many worker processes (each with its own scheduler; the database
leases keep every source to one run at a time). Set PROMETHEUS_MULTIPROC_DIR then, so /metrics
adds up every worker; it is emptied at start.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from kasparro.config import Settings, get_settings
from kasparro.logging import configure_logging, get_logger

log = get_logger(__name__)


def app_factory() -> FastAPI:
    """The application for a uvicorn worker process (`kasparro.serve:app_factory`, factory)."""
    from kasparro.api.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, scheduler=True)


def serve(settings: Settings, host: str, port: int) -> None:
    """Apply migrations, then serve; blocks until the server stops (Ctrl-C, SIGTERM)."""
    from kasparro.api.app import create_app
    from kasparro.db.migrate import upgrade

    configure_logging(settings.log_level, settings.log_format)
    if settings.migrate_on_start:
        upgrade(settings.resolved_database_url)
    else:  # the migrate service/Job does it; /readyz stays 503 until the schema is at head
        log.info("migrations_left_to_the_migrate_step")
    workers = _workers()
    log.info("serving", host=host, port=port, workers=workers)
    _reset_multiprocess_dir(workers)
    # The middleware logs every request with its request id: no uvicorn access log; and
    # log_config=None keeps the logging configure_logging set up.
    uvicorn.run(
        "kasparro.serve:app_factory" if workers > 1 else create_app(settings, scheduler=True),
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        proxy_headers=True,
    )


def _workers() -> int:
    text = os.environ.get("WEB_CONCURRENCY", "").strip()
    return max(1, int(text)) if text.isdigit() else 1


def _reset_multiprocess_dir(workers: int) -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR: the samples of a previous server's processes are gone."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        if workers > 1:
            log.warning(
                "metrics_per_worker", hint="set PROMETHEUS_MULTIPROC_DIR to aggregate workers"
            )
        return
    path = Path(directory)
    if path.exists():
        for child in path.iterdir():  # the directory itself may be a mount point
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)
