"""Reads survive a connection that died under them: retried once, on a fresh connection.

PostgreSQL terminates connections (pg_terminate_backend, a restart, a failover, an idle timeout
in a proxy); the pools check a connection before handing it out, but one that dies between the
check and the query fails its query. Only reads are retried, and only where nothing is lost by
running them again: a SELECT on an autocommit connection holds no transaction and changes
nothing. A write is never retried (it may have committed before the connection died).

Two drivers, one rule:
- SQLAlchemy (every route but /data on PostgreSQL): `install_read_retry` hooks the statement's
  execution on the engine, the documented "transparent reconnect for read-only, autocommit
  operations" (SQLAlchemy FAQ, "How Do I Retry a Statement Execution Automatically?").
- psycopg's async pool (/data on PostgreSQL): `read_async` runs a read on a pooled connection
  and once more on a fresh one. After an outage the pool reconnects with a growing backoff, so
  while it has no connection to give, reads go straight to fresh connections (as many at most as
  the pool may hold): the first request after the database is back succeeds at once, instead of
  waiting out the pool's timeout.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from prometheus_client import Counter
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExecutionContext

from kasparro.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

READ_RETRIES = Counter(
    "kasparro_db_read_retries_total",
    "Reads run again on a fresh connection because theirs had died, by driver.",
    ["driver"],
)


# SQLAlchemy ------------------------------------------------------------------------------------


def install_read_retry(engine: Engine) -> None:
    """Retry, once and on a fresh connection, a read whose connection died (PostgreSQL only)."""
    if engine.dialect.name != "postgresql":
        return  # SQLite's connections are files: nothing terminates them

    @event.listens_for(engine, "do_execute")
    def _execute(cursor: Any, statement: str, parameters: Any, context: ExecutionContext) -> bool:
        return _execute_read(
            lambda cur: context.dialect.do_execute(cur, statement, parameters, context),
            cursor,
            context,
        )

    @event.listens_for(engine, "do_execute_no_params")
    def _execute_no_params(cursor: Any, statement: str, context: ExecutionContext) -> bool:
        return _execute_read(
            lambda cur: context.dialect.do_execute_no_params(cur, statement, context),
            cursor,
            context,
        )


def _execute_read(execute: Callable[[Any], None], cursor: Any, context: ExecutionContext) -> bool:
    """Run the statement; on a disconnect, if it is a retryable read, once more on a new cursor
    of a fresh connection (the result is read from `context.cursor`). True: it was executed."""
    try:
        execute(cursor)
        return True
    except context.dialect.loaded_dbapi.Error as exc:
        conn = context.root_connection
        dbapi_connection = conn.connection.dbapi_connection
        if not (
            _retryable(context) and context.dialect.is_disconnect(exc, dbapi_connection, cursor)
        ):
            raise
    READ_RETRIES.labels("sqlalchemy").inc()
    log.warning("db_read_retried", driver="sqlalchemy")
    conn.invalidate()  # this connection is dead; the pool's others are pinged at checkout
    conn.rollback()  # forgets the (autocommit) transaction, so the connection may reconnect
    # Autocommit on the new connection too, reset (as the engine does) when it goes back to
    # the pool: a writer must never get a connection left in autocommit.
    context.dialect.set_connection_execution_options(conn, {"isolation_level": "AUTOCOMMIT"})
    context.cursor = fresh = conn.connection.cursor()
    execute(fresh)
    return True


def _retryable(context: ExecutionContext) -> bool:
    """A SELECT on an autocommit connection: nothing to lose, nothing changed, if run twice."""
    autocommit = context.execution_options.get("isolation_level") == "AUTOCOMMIT"
    statement = getattr(context, "statement", None) or ""
    return autocommit and not context.executemany and statement.lstrip()[:6].upper() == "SELECT"


# psycopg's async pool --------------------------------------------------------------------------


@dataclass
class _PoolState:
    fresh_slots: asyncio.Semaphore  # fresh connections at once, at most the pool's size
    down: bool = False  # a fresh connection failed: the pool is reconnecting, with backoff


_STATES: weakref.WeakKeyDictionary[AsyncConnectionPool[Any], _PoolState] = (
    weakref.WeakKeyDictionary()
)


def _state(pool: AsyncConnectionPool[Any]) -> _PoolState:
    state = _STATES.get(pool)
    if state is None:
        state = _STATES[pool] = _PoolState(asyncio.Semaphore(pool.max_size))
    return state


async def read_async(
    pool: AsyncConnectionPool[Any],
    read: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
) -> T:
    """`read` on a pooled connection; once more on a fresh one when that connection died or the
    pool could give none. `read` must only read: it may run twice."""
    state = _state(pool)
    if state.down:
        if pool.get_stats().get("pool_available", 0) == 0:
            return await _read_fresh(pool, state, read)
        state.down = False  # the pool has reconnected on its own
    used: psycopg.AsyncConnection[Any] | None = None
    try:
        async with pool.connection() as conn:
            used = conn
            return await read(conn)
    except PoolTimeout:
        pass  # no connection within the pool's timeout: perhaps none can be made
    except psycopg.OperationalError:
        if used is None or not (used.closed or used.broken):
            raise  # the database refused the query (a timeout, a cancel): not a dead connection
    READ_RETRIES.labels("psycopg").inc()
    log.warning("db_read_retried", driver="psycopg")
    return await _read_fresh(pool, state, read)


async def _read_fresh(
    pool: AsyncConnectionPool[Any],
    state: _PoolState,
    read: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
) -> T:
    """`read` on a new connection of the pool's settings, closed afterwards."""
    conninfo, kwargs = pool.conninfo, pool.kwargs
    # The API's pool is built from a URL and fixed options (no callables to resolve them).
    if not isinstance(conninfo, str) or not isinstance(kwargs, dict):
        raise TypeError("read_async needs a pool with a static conninfo and kwargs")
    async with state.fresh_slots:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, **kwargs)
        except psycopg.OperationalError:
            state.down = True  # until the pool has a connection again, fail (or succeed) fast
            raise
        async with conn:
            return await read(conn)
