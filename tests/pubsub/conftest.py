"""Fixtures for the pub/sub suite: real Redis (skipped with the reason when absent, a failure under
GOV_ASSISTANT_REQUIRE_SERVICES=1) and a key prefix of the test's own, deleted afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from replicas import REDIS_TEST_URL, redis_available

from assistant.config import RedisConfig


def require_redis() -> str:
    reason = redis_available()
    if reason is not None:
        if os.environ.get("GOV_ASSISTANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_TEST_URL


@pytest.fixture()
def redis_settings() -> Iterator[RedisConfig]:
    import redis

    url = require_redis()
    settings = RedisConfig(url=url, prefix=f"test-pubsub-{uuid.uuid4().hex[:10]}")
    yield settings
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{settings.prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()

