"""Structured logs: JSON lines in production, readable lines on a terminal (structlog)."""

from __future__ import annotations

import logging
import sys

import structlog

from kasparro import redaction
from kasparro.redaction import REDACTED

CHATTY_LIBRARIES = (
    "alembic",
    "apscheduler",
    "httpx",
    "httpcore",
    "pyrate_limiter",
    "uvicorn.error",
    "asyncio",
)
# Keys whose values never reach a log line, whatever a caller passes.
_SECRET_KEYS = frozenset({"api_key", "admin_api_key", "authorization", "password", "x-api-key"})


def _redact_secrets(
    _logger: object, _method: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    for key, value in event.items():
        event[key] = REDACTED if key.lower() in _SECRET_KEYS else redaction.redact_value(value)
    return event


class _CurrentStderr:
    """Writes, redacted, to whatever sys.stderr is at the time of writing, not when logging
    was set up.

    Test runners and embedding programs swap sys.stderr; a stream bound at set-up time
    would later be a closed file, and every log call would raise.
    """

    def write(self, text: str) -> int:
        # The last gate for every line, structlog's and the standard library's (httpx, uvicorn,
        # tracebacks): no piece of a configured secret leaves by stderr.
        return sys.stderr.write(redaction.redact(text))

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Configure structlog and the standard library's logging to write to stderr."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    # The standard library's records (alembic, APScheduler, httpx, uvicorn) go through the same
    # processors and renderer, so a log is one format whatever wrote it.
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info if use_json else structlog.dev.set_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Libraries' routine chatter (a line per HTTP request, per migration step, per job) is
    # for debugging; their warnings and errors still show.
    chatter = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(chatter)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
