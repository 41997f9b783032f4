"""Rate limits per API key: a fixed window counted atomically in Redis.

Each key's window opens with its first request and lasts
``rate_limit_window_s``; one Lua script increments the counter and sets its
expiry in a single step, so every API process shares the count and a crash
between the two can never leave a counter that does not expire. Redis's clock
decides when a window ends, so API processes with skewed clocks agree.

The API calls :func:`enforce` once it knows the key (in ``require``), before
the scope check: a key hammering routes it may not use is limited too.
:func:`add_headers` puts ``RateLimit-*`` on every limited response. When
Redis is down the limit fails open: requests pass and a warning is logged (at
most once a minute per process), because refusing every client would turn a
Redis outage into an API outage.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g
from redis import Redis
from redis.exceptions import RedisError

from config.settings import Settings
from service.exceptions import RateLimited

log = logging.getLogger(__name__)

KEY_PREFIX = "docket:ratelimit:"
WARN_EVERY_S = 60.0

# KEYS[1]: the counter; ARGV[1]: the window in ms. Returns {count, ms left in the window}.
HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


@dataclass(frozen=True)
class Window:
    """Where one key stands in its current window."""

    limit: int
    count: int
    reset_s: int  # whole seconds until the window ends (at least 1)
    window_s: float

    @property
    def remaining(self) -> int:
        return max(self.limit - self.count, 0)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": f"{self.limit};w={self.window_s:g}",
        }


class RateLimiter:
    """*limit* requests per *window_s* seconds for each name, counted in *redis*."""

    def __init__(self, redis: Redis, limit: int, window_s: float) -> None:
        self.redis, self.limit, self.window_s = redis, limit, window_s
        self._hit = redis.register_script(HIT)
        self._warned_at = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings, redis: Redis) -> RateLimiter | None:
        """The limiter the settings ask for, or None when ``rate_limit_requests`` is 0."""
        if settings.rate_limit_requests <= 0:
            return None
        return cls(redis, settings.rate_limit_requests, settings.rate_limit_window_s)

    def hit(self, name: str) -> Window | None:
        """Count one request for *name*; None when Redis cannot be reached (the request passes)."""
        try:
            count, ttl_ms = self._hit(keys=[KEY_PREFIX + name], args=[max(int(self.window_s * 1000), 1)])
        except RedisError as exc:
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY_S:
                self._warned_at = now
                log.warning("rate limiting is off while Redis is unavailable (%s); requests pass unlimited",
                            type(exc).__name__)
            return None
        return Window(self.limit, int(count), max(math.ceil(int(ttl_ms) / 1000), 1), self.window_s)


# --- the Flask edge ------------------------------------------------------------


def init_app(app: Flask, settings: Settings) -> None:
    app.extensions["docket.ratelimit"] = RateLimiter.from_settings(settings, app.extensions["docket.redis"])


def enforce(key_id: int) -> None:
    """Count a request by API key *key_id*; raise :class:`RateLimited` past the limit."""
    limiter: RateLimiter | None = current_app.extensions.get("docket.ratelimit")
    window = limiter.hit(f"key:{key_id}") if limiter is not None else None
    if window is None:
        return
    g.rate_limit = window
    if window.exceeded:
        raise RateLimited(
            f"This API key made more than {window.limit} requests in {window.window_s:g} s; "
            f"try again in {window.reset_s} s.",
            retry_after=window.reset_s,
        )


def add_headers(resp: Response) -> Response:
    """``RateLimit-*`` on every response to a counted request (429s included)."""
    window: Window | None = g.get("rate_limit")
    if window is not None:
        resp.headers.update(window.headers())
    return resp
