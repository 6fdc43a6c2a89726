"""`kasparro serve`: migrate, then serve the API with the scheduled ETL under uvicorn.

The listening socket is bound first: a port already taken fails the start before migrations
run and before any ETL starts.

WEB_CONCURRENCY > 1 runs that many worker processes (each with its own scheduler; the database
leases keep every source to one run at a time). Set PROMETHEUS_MULTIPROC_DIR then, so /metrics
adds up every worker; it is emptied at start.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from kasparro.config import Settings, get_settings
from kasparro.logging import configure_logging, get_logger

log = get_logger(__name__)

# uvicorn's default listen backlog.
BACKLOG = 2048


class AddressUnavailable(OSError):
    """The API's address cannot be listened on (port taken, no permission, unknown host)."""


class ServerFailed(RuntimeError):
    """uvicorn stopped before it started serving (its log says why)."""


def app_factory() -> FastAPI:
    """The application for a uvicorn worker process (`kasparro.serve:app_factory`, factory)."""
    from kasparro.api.app import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, scheduler=True)


def serve(settings: Settings, host: str, port: int) -> None:
    """Listen, apply migrations, then serve; blocks until the server stops (Ctrl-C, SIGTERM)."""
    from kasparro.api.app import create_app
    from kasparro.db.migrate import upgrade

    configure_logging(settings.log_level, settings.log_format)
    sock = listen(host, port)
    try:
        if settings.migrate_on_start:
            upgrade(settings.resolved_database_url)
        else:  # the migrate service/Job does it; /readyz stays 503 until the schema is at head
            log.info("migrations_left_to_the_migrate_step")
        workers = _workers()
        log.info("serving", host=host, port=port, workers=workers)
        _reset_multiprocess_dir(workers)
        # The middleware logs every request with its request id: no uvicorn access log; and
        # log_config=None keeps the logging configure_logging set up.
        config = uvicorn.Config(
            "kasparro.serve:app_factory" if workers > 1 else create_app(settings, scheduler=True),
            factory=workers > 1,
            workers=workers,
            access_log=False,
            log_config=None,
            proxy_headers=True,
        )
        if workers > 1:
            Multiprocess(config, sockets=[sock]).run()
            return
        server = uvicorn.Server(config)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl-C, re-raised by uvicorn once it has shut down
            pass
        except SystemExit:  # uvicorn's own exit when the application fails to start
            if not server.started:
                raise ServerFailed("the server stopped before it started (see the log)") from None
            raise
    finally:
        sock.close()


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and listening, or AddressUnavailable saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise AddressUnavailable(_why_not(host, port, exc)) from None
    sock.set_inheritable(True)  # worker processes serve on it
    return sock


def _why_not(host: str, port: int, exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"API_HOST: cannot resolve {host!r} ({exc.strerror})"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"API_PORT: port {port} on {host} is already in use: stop what listens there, "
            "or choose another port (API_PORT or --port)"
        )
    if exc.errno == errno.EACCES:
        return f"API_PORT: no permission to listen on port {port} (ports below 1024 need it)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"API_HOST: {host} is not an address of this machine"
    return f"API_HOST/API_PORT: cannot listen on {host}:{port} ({exc.strerror or exc})"


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
