"""The inbound rate limit: API_RATE_LIMIT_PER_MINUTE requests per client in any 60-second window.

It is the `limits` library's moving window, kept either in this process (REDIS_URL unset: with N
processes or replicas a client gets up to N times the limit) or in Redis (REDIS_URL set: one
budget per client shared by every process and replica; the check and the count are one atomic
Redis script, so replicas cannot race past the limit).

If Redis cannot be reached the request is let through and the outage is logged (at most once a
minute): a rate limiter's outage should not take the API down with it.
"""

from __future__ import annotations

import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from kasparro.logging import get_logger

log = get_logger(__name__)

DEFAULT_KEY_PREFIX = "kasparro:ratelimit"
_OUTAGE_LOG_INTERVAL = 60.0


class RateLimit:
    """`acquire(client)` counts a request: 0.0 when allowed, else seconds until one is."""

    def __init__(
        self,
        per_minute: int,
        *,
        redis_url: str | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
    ) -> None:
        self.item = RateLimitItemPerMinute(per_minute)
        self.shared = redis_url is not None
        self.storage: Storage
        if redis_url is not None:
            self.storage = RedisStorage(
                _async_uri(redis_url),
                implementation="redispy",
                key_prefix=key_prefix,
                wrap_exceptions=True,
            )
        else:
            self.storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self.storage)
        self._outage_logged_at = -_OUTAGE_LOG_INTERVAL

    async def acquire(self, client: str) -> float:
        try:
            if await self._limiter.hit(self.item, client):
                return 0.0
            stats = await self._limiter.get_window_stats(self.item, client)
        except (StorageError, OSError) as exc:
            self._log_outage(exc)
            return 0.0
        return max(stats.reset_time - time.time(), 0.001)

    def _log_outage(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._outage_logged_at >= _OUTAGE_LOG_INTERVAL:
            self._outage_logged_at = now
            # The storage's message may carry the Redis URL (and its password): only the type.
            cause = exc.__cause__ or exc
            log.warning("rate_limit_storage_unavailable", error_type=type(cause).__name__)


def _async_uri(redis_url: str) -> str:
    """`redis://` / `rediss://` / `redis+unix://` as the `limits` async scheme it expects."""
    return redis_url if redis_url.startswith("async+") else "async+" + redis_url
