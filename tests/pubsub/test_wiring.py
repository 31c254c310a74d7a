"""``attach_redis``: with ``redis.url`` the channels of a built app get their Redis parts (and they start with the
app); without it nothing changes."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.config import ProjectConfig, RedisConfig
from assistant.handoff.bus import RedisBus
from assistant.redis_client import key, redis_client
from connectors.console.delivery import ChannelDelivery
from connectors.dedupe import SqlDeduplicator
from connectors.redis_bridge import CitizenBridge
from connectors.redis_dedupe import RedisDeduplicator
from connectors.redis_wiring import attach_redis
from connectors.webchat import WebchatChannel
from connectors.wechat import WeChatChannel
from connectors.wechat_api import RedisTokenCache


def server(tmp_path: Path, settings: RedisConfig | None) -> tuple[Any, FastAPI]:
    config = ProjectConfig(redis=settings or RedisConfig())
    bus = RedisBus(lambda: redis_client(config.redis), key(config.redis, "console"))
    runtime = SimpleNamespace(
        config=config, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", knowledge=None,
        handoff=SimpleNamespace(deps=SimpleNamespace(bus=bus, agents_online=lambda: 1)),
        delivery=ChannelDelivery(),
    )
    app = FastAPI()
    app.state.channels = {"webchat": WebchatChannel(runtime, {}),
                          "wechat": WeChatChannel(runtime, {"token": "tok", "appid": "wxapp", "secret": "s"})}
    runtime.delivery.channels.update(app.state.channels)
    return runtime, app


def test_without_redis_nothing_changes(tmp_path: Path) -> None:
    runtime, app = server(tmp_path, None)
    assert attach_redis(runtime, app) == []
    assert isinstance(app.state.channels["wechat"].dedupe, SqlDeduplicator)
    assert app.state.channels["wechat"].api.token_cache is None
    assert app.state.channels["webchat"].socket_listeners == [] and runtime.delivery.bridge is None


def test_with_redis_the_channels_share_state_and_the_parts_run_with_the_app(
    tmp_path: Path, redis_settings: RedisConfig
) -> None:
    runtime, app = server(tmp_path, redis_settings)
    parts = attach_redis(runtime, app)
    bus = runtime.handoff.deps.bus
    assert bus in parts
    wechat, webchat = app.state.channels["wechat"], app.state.channels["webchat"]
    assert isinstance(wechat.dedupe, RedisDeduplicator)
    assert isinstance(wechat.api.token_cache, RedisTokenCache)
    assert isinstance(runtime.delivery.bridge, CitizenBridge) and set(runtime.delivery.bridge.channels) == {"webchat"}
    assert len(webchat.socket_listeners) == 1
    # presence heard from another replica counts for the waiting-time estimate
    bus._presence["other-replica"] = (time.monotonic(), ["li", "wang"])
    assert runtime.handoff.deps.agents_online() == 2

    with TestClient(app):  # the app's lifespan starts the listeners
        deadline = time.monotonic() + 5
        while not (bus.listening.is_set() and runtime.delivery.bridge.listening.is_set()):
            assert time.monotonic() < deadline, "listeners did not start with the app"
            time.sleep(0.05)
        assert wechat.dedupe.claim("wx:msg:1") and not wechat.dedupe.claim("wx:msg:1")
