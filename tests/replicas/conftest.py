"""Fixtures for the several-replicas suite: a Redis key prefix of the test's own (deleted afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from replicas import REDIS_TEST_URL, redis_available


def require_redis() -> str:
    """The test Redis URL, or skip (fail under GOV_ASSISTANT_REQUIRE_SERVICES=1) when Redis does not answer."""
    reason = redis_available()
    if reason is not None:
        if os.environ.get("GOV_ASSISTANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_TEST_URL


@pytest.fixture()
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    import redis

    url = require_redis()
    prefix = f"test-locks-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()
