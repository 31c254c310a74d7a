"""Fixtures for the pub/sub suite: real Redis (skipped with the reason when absent, a failure under
GOV_ASSISTANT_REQUIRE_SERVICES=1) and a key prefix of the test's own, deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from services import redis_keys_deleted, redis_test_url

from assistant.config import RedisConfig


@pytest.fixture()
def redis_settings() -> Iterator[RedisConfig]:
    url = redis_test_url()
    with redis_keys_deleted(url, f"test-pubsub-{uuid.uuid4().hex[:10]}") as prefix:
        yield RedisConfig(url=url, prefix=prefix)
