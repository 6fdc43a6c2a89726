"""The FastAPI application: routes, problem documents, request context and (optionally) the
scheduled ETL, wired to one database engine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import Engine

from kasparro.api.docs import offline_docs_app
from kasparro.api.errors import install_error_handlers, problem_openapi
from kasparro.api.middleware import RequestContextMiddleware
from kasparro.api.queries.data import TotalsCache
from kasparro.api.routes import (
    assets,
    data,
    elapsed_ms,
    etl,
    health,
    history,
    identity,
    metrics,
    prices,
    probes,
    quality,
    quarantine,
    request_id,
    runs,
    stats,
)
from kasparro.api.routes.data import json_response
from kasparro.api.schemas import DataPage
from kasparro.api.ui import install_console
from kasparro.config import Settings
from kasparro.db.engine import create_db_engine

BENCH_ENV = "KASPARRO_BENCH_ENDPOINTS"

DESCRIPTION = """Unified cryptocurrency market data from several sources, and the state of the
ETL that collects it.

Every error is an RFC 9457 problem document (`application/problem+json`) carrying the request
id; `X-Request-ID` is echoed when sent and generated when not. Requests are rate limited per
client (`API_RATE_LIMIT_PER_MINUTE`; 429 with `Retry-After`), except /health, /livez, /readyz
and /metrics.
`POST /etl/run` (and every other write, such as `POST /consensus/compute`) needs `X-API-Key`
equal to the server's `ADMIN_API_KEY`.
"""


def create_app(
    settings: Settings, engine: Engine | None = None, *, scheduler: bool = False
) -> FastAPI:
    """The API over `engine` (one is created from the settings, and disposed, when None).

    With `scheduler=True` the ETL runs in-process on ETL_SCHEDULE, and once at start-up unless
    ETL_RUN_ON_START is false; it starts and stops with the application's lifespan.
    """
    owns_engine = engine is None
    db = (
        engine
        if engine is not None
        else create_db_engine(settings.resolved_database_url, pool_size=settings.db_pool_size)
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        etl_scheduler = None
        app.state.read_pool = _read_pool(db, settings)
        if app.state.read_pool is not None:
            await app.state.read_pool.open()
        if scheduler:
            from kasparro.etl.lease import interrupt_dead_runs
            from kasparro.etl.scheduler import EtlScheduler

            # Runs a dead process of this host left `running` end now, before any new run.
            interrupt_dead_runs(db)
            etl_scheduler = EtlScheduler(db, settings)
            etl_scheduler.start()
        app.state.scheduler = etl_scheduler
        try:
            yield
        finally:
            if etl_scheduler is not None:
                etl_scheduler.shutdown()
            if app.state.read_pool is not None:
                await app.state.read_pool.close()
            if owns_engine:
                db.dispose()

    # /docs and /redoc load their scripts from the server itself, not from a CDN.
    app = offline_docs_app(
        title="Kasparro",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = db
    # Reads need no transaction: on PostgreSQL they run in autocommit on the same pool, which
    # saves the BEGIN and ROLLBACK round trips of every request. (SQLite keeps its own BEGIN.)
    app.state.read_engine = (
        db.execution_options(isolation_level="AUTOCOMMIT")
        if db.dialect.name == "postgresql"
        else db
    )
    app.state.scheduler = None
    app.state.read_pool = None  # opened by the lifespan, on PostgreSQL
    app.state.data_totals = TotalsCache()
    # Parsed now, so a malformed ETL_SCHEDULE fails at start-up, not at the first tick.
    if scheduler:
        from kasparro.etl.scheduler import parse_schedule

        parse_schedule(settings.etl_schedule)

    install_error_handlers(app)
    for module in (health, probes, data, assets, etl, stats, runs, quality, quarantine, metrics):
        app.include_router(module.router)
    app.include_router(identity.router)
    app.include_router(prices.router)
    app.include_router(history.router)  # candles, exports
    if os.environ.get(BENCH_ENV) == "1":
        app.include_router(_bench_router())
    # The operator's console at /ui (and / redirecting there).
    install_console(app)

    admin_key = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    app.add_middleware(
        RequestContextMiddleware,
        rate_limit_per_minute=settings.api_rate_limit_per_minute,
        admin_api_key=admin_key,
        redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
        redis_key_prefix=f"{settings.redis_key_prefix}:ratelimit",
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = problem_openapi(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _read_pool(engine: Engine, settings: Settings) -> AsyncConnectionPool | None:
    """On PostgreSQL, psycopg's async pool for /data, which runs on the event loop: no worker
    thread per request. Autocommit (reads need no transaction); a connection is checked before
    use, so a database restart costs no failed request; a request waits at most 5 s for one."""
    if engine.dialect.name != "postgresql":
        return None
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=settings.db_pool_size,
        timeout=5,
        open=False,
        kwargs={"autocommit": True},
        check=AsyncConnectionPool.check_connection,
        name="kasparro-read",
    )


def _bench_router() -> APIRouter:
    """GET /__bench__/static: a fixed 100-row body shaped like /data, for the benchmark's baseline.

    It goes through the same middleware and the same serializer as /data, without the database.
    """
    observed = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {
            "asset_id": f"asset-{i}",
            "source": "csv",
            "source_asset_id": f"asset-{i}",
            "symbol": f"A{i}",
            "name": f"Asset {i}",
            "price_usd": 1.0 + i,
            "market_cap_usd": 1_000_000.0 * (i + 1),
            "volume_24h_usd": 10_000.0 * (i + 1),
            "observed_at": observed + timedelta(minutes=i),
            "ingested_at": observed + timedelta(minutes=i, seconds=1),
            "run_id": "00000000-0000-0000-0000-000000000000",
        }
        for i in range(100)
    ]
    router = APIRouter()

    @router.get("/__bench__/static", include_in_schema=False, response_model=DataPage)
    def bench_static(request: Request) -> Response:
        return json_response(
            {
                "data": rows,
                "meta": {
                    "request_id": request_id(request),
                    "api_latency_ms": elapsed_ms(request),
                    "limit": 100,
                    "offset": 0,
                    "count": 100,
                    "total": 100,
                    "next_cursor": None,
                },
            }
        )

    return router
