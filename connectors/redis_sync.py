"""A blocking Redis client for the few callers that are not coroutines (WeChat dedupe, which the webhook calls
synchronously; the index-publish announcement, sent from the worker thread that built the index). Same timeouts
and text replies as ``assistant.redis_client``'s asyncio client."""

from __future__ import annotations

import redis

from assistant.config import RedisConfig
from assistant.redis_client import CONNECT_TIMEOUT_S, HEALTH_CHECK_INTERVAL_S, SOCKET_TIMEOUT_S


def sync_redis_client(config: RedisConfig) -> redis.Redis | None:
    if not config.url:
        return None
    return redis.Redis.from_url(
        config.url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=HEALTH_CHECK_INTERVAL_S,
        decode_responses=True,
    )
