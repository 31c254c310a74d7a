"""The one place that builds the Redis client from ``config.redis`` and names keys.

Every Redis user (conversation locks, console pub/sub, index reloads, WeChat dedupe and token cache) goes through
``redis_client`` so all of them get the same timeouts (a Redis outage must fail a request fast, not hang it) and
``key`` so all keys and channels carry the deployment's prefix (several deployments can share one Redis).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from assistant.config import RedisConfig

# Short enough that a dead Redis turns into a clear error within a request's budget, long enough for a busy one.
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
HEALTH_CHECK_INTERVAL_S = 15
# connections per process; when all are busy a command waits this long for one instead of failing at once (the
# default pool raises as soon as 100 commands are in flight, e.g. 200 conversations waiting for their locks)
MAX_CONNECTIONS = 100
POOL_WAIT_S = 5.0


def redis_client(config: RedisConfig) -> aioredis.Redis | None:
    """An asyncio client for ``config.url`` (connections are made lazily), or None when no Redis is configured
    (one process: callers use their in-process implementation)."""
    if not config.url:
        return None
    pool = aioredis.BlockingConnectionPool.from_url(
        config.url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        # keys and payloads we write are UTF-8 text; pub/sub listeners get str, not bytes
        decode_responses=True,
    )
    # the client closes its pool with it (aclose)
    return aioredis.Redis.from_pool(pool)


def key(config: RedisConfig, *parts: str) -> str:
    """``prefix:part:part`` — a key or channel name of this deployment."""
    return ":".join((config.prefix, *parts))
