"""One pure-ASGI middleware for every request: request id, logs, metrics, rate limit, last-resort
error handling.

- Request id: `X-Request-ID` is echoed when sent (if it is a sane token: 1-128 characters of
  letters, digits and `-_.:`), generated otherwise; it is bound to structlog's contextvars so
  every log line of the request carries it, and returned in the response header.
- Metrics: requests and latency by route *template* (`/assets/{asset_id}`), never the raw path.
- Rate limit: API_RATE_LIMIT_PER_MINUTE requests per client in any minute (0 turns it off), kept
  in this process or, with REDIS_URL, in Redis for every process and replica (see ratelimit.py).
  The client is the admin API key when a valid one is sent, else the peer address (uvicorn's
  proxy-header handling, FORWARDED_ALLOW_IPS, decides what that is). /health, /livez, /readyz
  and /metrics are exempt.
- Input: a query or path parameter that is not UTF-8, holds a control character or is
  over-long is refused with a 400 problem naming it, before any route (see inputs.py).
- An exception no handler took becomes a 500 problem (logged with its traceback, never sent).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
import uuid

import structlog
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kasparro import metrics
from kasparro.api.errors import error_response, problem_response
from kasparro.api.inputs import BadParameter, check_request, printable
from kasparro.api.ratelimit import DEFAULT_KEY_PREFIX, RateLimit
from kasparro.logging import get_logger

log = get_logger("kasparro.api.access")

REQUEST_ID_HEADER = "x-request-id"
EXEMPT_PATHS = frozenset({"/health", "/livez", "/readyz", "/metrics"})
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        rate_limit_per_minute: int = 0,
        admin_api_key: str | None = None,
        redis_url: str | None = None,
        redis_key_prefix: str = DEFAULT_KEY_PREFIX,
    ) -> None:
        self.app = app
        self.rate_limit = (
            RateLimit(rate_limit_per_minute, redis_url=redis_url, key_prefix=redis_key_prefix)
            if rate_limit_per_minute > 0
            else None
        )
        self._admin_key = admin_api_key.encode() if admin_api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["started"] = started
        sent_id = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = sent_id if sent_id and _REQUEST_ID_RE.fullmatch(sent_id) else uuid.uuid4().hex
        state["request_id"] = request_id
        id_header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        method = scope.get("method", "GET")
        # A mounted app (static files) moves root_path under it: the route is matched as sent.
        root_path = scope.get("root_path", "")
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                retry_after = await self._limited(scope)
                if retry_after:
                    seconds = max(1, math.ceil(retry_after))
                    response = problem_response(
                        scope,
                        429,
                        f"rate limit exceeded; retry in {seconds} s",
                        slug="rate-limited",
                        title="Too many requests",
                        headers={"Retry-After": str(seconds)},
                        retry_after=seconds,
                    )
                    await response(scope, receive, send_with_id)
                elif bad := check_request(scope):
                    await _bad_parameter(scope, bad)(scope, receive, send_with_id)
                else:
                    await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if response_started:  # too late for a problem document: the client sees a cut
                    log.error("response_failed", error_type=type(exc).__name__, exc_info=exc)
                    raise
                await error_response(scope, exc)(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = _route_template({**scope, "root_path": root_path})
                metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
                metrics.HTTP_LATENCY.labels(route, method).observe(elapsed)
                log.info(
                    "http_request",
                    method=method,
                    path=scope.get("path"),
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 3),
                )

    async def _limited(self, scope: Scope) -> float:
        if self.rate_limit is None or scope.get("path") in EXEMPT_PATHS:
            return 0.0
        return await self.rate_limit.acquire(self._client_key(scope))

    def _client_key(self, scope: Scope) -> str:
        sent = _header(scope, b"x-api-key")
        if sent and self._admin_key and hmac.compare_digest(sent.encode(), self._admin_key):
            return "key:" + hashlib.sha256(self._admin_key).hexdigest()[:16]
        client = scope.get("client")
        return "ip:" + (str(client[0]) if client else "unknown")


def _bad_parameter(scope: Scope, bad: BadParameter) -> Response:
    # The problem's `instance` is the path as sent, escaped: the decoded one may hold the very
    # characters refused.
    raw = scope.get("raw_path")
    sent = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", ""))
    return problem_response(
        {**scope, "path": printable(sent, 256)},
        400,
        f"invalid parameter `{bad.name}`: {bad.message}",
        slug="invalid-parameter",
        title="Invalid request parameter",
        param=bad.name,
        errors=[{"name": bad.name, "location": bad.location, "message": bad.message}],
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _route_template(scope: Scope) -> str:
    route = scope.get("route") or _matching_route(scope)
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(route, Mount):
        template = f"{route.path}/{{path}}"  # static files: one label, not one per file
    return str(template) if template else UNMATCHED_ROUTE


def _matching_route(scope: Scope) -> object | None:
    """The route of a request the router did not label (/docs, /openapi.json, static files)."""
    app = scope.get("app")
    for route in getattr(app, "routes", ()):
        if isinstance(route, BaseRoute) and route.matches(scope)[0] is Match.FULL:
            return route
    return None
