"""WeChat message dedupe in Redis, for several replicas: WeChat retries a message it got no answer for, and the
retry may reach another replica. ``SET key NX EX ttl`` claims a message atomically across replicas; the key
expires by itself (WeChat retries within seconds, three times), so nothing needs sweeping. Same ``claim`` /
``release`` interface as ``connectors.dedupe.SqlDeduplicator``, the default without Redis."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from assistant.errors import ApiError

log = logging.getLogger(__name__)
DEFAULT_TTL_S = 300


def dedupe_unavailable() -> ApiError:
    # WeChat retries a message that got an error: nothing is lost while Redis is away
    return ApiError(503, "dedupe_unavailable", "服务暂时不可用，请稍后再试", "Temporarily unavailable; retry shortly",
                    {"Retry-After": "5"})


class RedisDeduplicator:
    def __init__(self, client: Any, prefix: str, ttl_s: int = DEFAULT_TTL_S) -> None:
        """``client``: a blocking ``redis.Redis`` (``connectors.redis_sync.sync_redis_client``); ``prefix`` the
        deployment's key prefix."""
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s

    def _key(self, key: str) -> str:
        return f"{self.prefix}:dedupe:{key}"

    def claim(self, key: str) -> bool:
        """True the first time a key is claimed (on any replica), False for every later delivery."""
        try:
            return bool(self.client.set(self._key(key), "1", nx=True, ex=self.ttl_s))
        except RedisError as err:
            log.warning("wechat dedupe: Redis unreachable (%s)", type(err).__name__)
            raise dedupe_unavailable() from err

    def release(self, key: str) -> None:
        """Forget a claim whose processing failed, so the sender's retry is taken."""
        try:
            self.client.delete(self._key(key))
        except RedisError as err:
            # the key expires after ttl_s anyway; a retry within it is answered "success" and not processed
            log.warning("wechat dedupe: could not release a claim (%s)", type(err).__name__)
