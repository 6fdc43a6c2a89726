"""Every 4xx and 5xx as an RFC 9457 problem document carrying the request id.

Never a stack trace, never a secret: unexpected errors are logged (with their traceback) and
answered with a generic 500; database errors are answered with a 503 that names no host.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope

from kasparro import redaction
from kasparro.api.schemas import Problem
from kasparro.logging import get_logger

log = get_logger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:kasparro:problem:"

_DESCRIPTIONS = {
    400: "Bad request: a parameter is invalid or parameters conflict.",
    401: "No API key: send X-API-Key.",
    403: "Wrong API key.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict: the source is already running.",
    422: "A parameter failed validation; the problem names it.",
    429: "Too many requests: wait for Retry-After seconds.",
    500: "Unexpected server error (logged with the request id).",
    503: "The service cannot serve this now (database unreachable, or not configured).",
}


class ProblemError(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extensions = extensions


def request_id_of(scope: Scope) -> str:
    """The id the middleware gave this request (a fresh one if it never ran)."""
    state = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if not isinstance(request_id, str):
        request_id = uuid.uuid4().hex
        state["request_id"] = request_id
    return request_id


def problem_body(
    scope: Scope,
    status: int,
    detail: str | None,
    *,
    slug: str | None = None,
    title: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug if slug else "about:blank",
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        "instance": scope.get("path"),
        "request_id": request_id_of(scope),
    }
    body.update({k: v for k, v in extensions.items() if v is not None})
    # A detail may quote what a caller sent or an upstream said: never a secret, even in part.
    redacted: dict[str, Any] = redaction.redact_value(body)  # type: ignore[assignment]
    return redacted


def problem_response(
    scope: Scope,
    status: int,
    detail: str | None,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    body = problem_body(scope, status, detail, slug=slug, title=title, **extensions)
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these error codes (turned into problem+json later)."""
    return {code: {"model": Problem, "description": _DESCRIPTIONS[code]} for code in codes}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _param_name(loc: Sequence[Any]) -> tuple[str, str]:
    location = str(loc[0]) if loc else "request"
    if len(loc) < 2:
        return location, location
    if location == "body":
        return location, ".".join(str(part) for part in loc[1:])
    # A parameter's name, not `source.0` for the first value of a repeated one.
    return location, str(loc[1])


def _validation_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        location, name = _param_name(error.get("loc", ()))
        # The message only: the rejected input is never echoed (it could be anything).
        errors.append({"name": name, "location": location, "message": str(error.get("msg", ""))})
    names = ", ".join(dict.fromkeys(f"`{e['name']}`" for e in errors)) or "the request"
    first = errors[0]["message"] if errors else "invalid request"
    plural = "parameters" if len(errors) > 1 else "parameter"
    return problem_response(
        request.scope,
        422,
        f"invalid {plural} {names}: {first}",
        slug="validation-error",
        title="Invalid request parameter",
        errors=errors,
    )


def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers or {})
    return problem_response(request.scope, exc.status_code, detail, headers=headers)


def _raised_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request.scope,
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        headers=exc.headers,
        **exc.extensions,
    )


# The database cannot be reached: through SQLAlchemy, or on psycopg's async pool (/data).
DATABASE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    PoolTimeout,
)


def database_problem(scope: Scope, exc: BaseException) -> Response:
    # The driver's message may name hosts and users: logged here, never sent.
    log.error("database_unavailable", error=type(exc).__name__)
    return problem_response(
        scope,
        503,
        "the database cannot be reached; try again shortly",
        slug="database-unavailable",
        title="Database unavailable",
        headers={"Retry-After": "5"},
    )


def internal_problem(scope: Scope, exc: BaseException) -> Response:
    log.error("unhandled_exception", error_type=type(exc).__name__, exc_info=exc)
    return problem_response(
        scope,
        500,
        "an unexpected error occurred; quote the request id when reporting it",
        slug="internal-error",
        title="Internal server error",
    )


def error_response(scope: Scope, exc: BaseException) -> Response:
    """The answer to an exception that escaped the routes (used by the middleware)."""
    if isinstance(exc, DATABASE_ERRORS):
        return database_problem(scope, exc)
    return internal_problem(scope, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    return error_response(request.scope, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(StarletteHTTPException, _http_problem)
    app.add_exception_handler(ProblemError, _raised_problem)
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _unexpected)
    # Anything else propagates to the middleware, which answers 500 with the request id bound.


def problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare every error response as application/problem+json (FastAPI says application/json),
    and the 400 every operation may answer: the middleware refuses unacceptable parameters
    (not UTF-8, control characters, over-long) before any route runs."""
    ref = "#/components/schemas/Problem"
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            operation.setdefault("responses", {}).setdefault(
                "400",
                {
                    "description": _DESCRIPTIONS[400],
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": ref}}},
                },
            )
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                json_content = content.get("application/json")
                if (
                    code[:1] in {"4", "5"}
                    and json_content
                    and json_content.get("schema", {}).get("$ref") == ref
                ):
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return schema
