"""Engines and write transactions that behave alike on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url

from kasparro.db.retry import install_read_retry
from kasparro.db.types import json_text

# Every write transaction takes this advisory lock on PostgreSQL, so identity resolution of
# concurrent sources never sees a half-written canonical asset (SQLite serializes writers anyway).
WRITE_LOCK_KEY = 0x4B415350  # "KASP"


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; on SQLite, make the file's folder and set safe pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    if parsed.drivername == "postgresql" or parsed.drivername == "postgres":
        url = str(parsed.set(drivername="postgresql+psycopg"))
    engine = sa.create_engine(url, pool_pre_ping=True, json_serializer=json_text, **kwargs)
    install_read_retry(engine)
    return engine


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url, connect_args={"timeout": 30}, json_serializer=json_text, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is lazy).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front, so two writers never deadlock on a lock upgrade.
        immediate = conn.get_execution_options().get("kasparro_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def write_transaction(engine: Engine, *, serialized: bool = True) -> Iterator[Connection]:
    """One write transaction: committed on success, rolled back on any error.

    Serialized (the default), it runs alone among serialized writers on PostgreSQL (SQLite
    serializes every writer anyway). Only writes that nobody else can race may skip that.
    """
    with engine.connect() as conn:
        conn.execution_options(kasparro_write=True)
        with conn.begin():
            if serialized and conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
            yield conn


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"
