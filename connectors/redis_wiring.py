"""Several replicas: what Redis carries besides conversation locks, wired into a built server app.

Called by the composition root once the app (and its channels) exist. Without ``redis.url`` it changes nothing
and every seam stays in process. With it:

- pushes to citizens reach the replica holding their web-chat socket (``connectors.redis_bridge``);
- WeChat message dedupe keys and the access token live in Redis (any replica may take WeChat's retry; one token
  shared by all);
- a knowledge-base publish or rollback is announced, and every replica follows (``connectors.index_follower``);
- the console bus (made in ``connectors.console.wiring``) and the listeners above start with the app and stop
  with it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from assistant.config import RedisConfig
from assistant.handoff.bus import RedisBus
from assistant.redis_client import key, redis_client
from connectors.dedupe import SqlDeduplicator
from connectors.index_follower import IndexFollower, kb_channel
from connectors.redis_bridge import CitizenBridge
from connectors.redis_dedupe import RedisDeduplicator
from connectors.redis_sync import sync_redis_client
from connectors.wechat_api import CustomerServiceClient, RedisTokenCache

log = logging.getLogger(__name__)
INDEX_POLL_S = 10.0


def attach_redis(runtime: Any, app: FastAPI, *, index_poll_s: float = INDEX_POLL_S) -> list[Any]:
    """Wire Redis into ``app``'s channels and ``runtime``; the started parts (empty without Redis)."""
    settings: RedisConfig | None = getattr(runtime.config, "redis", None)
    if settings is None or not settings.url:
        return []

    def client() -> Any:
        return redis_client(settings)

    sync = sync_redis_client(settings)
    parts: list[Any] = []
    deps = getattr(getattr(runtime, "handoff", None), "deps", None)
    if deps is not None and isinstance(deps.bus, RedisBus):
        parts.append(deps.bus)
        # the waiting-time estimate counts staff with a console open on any replica, not only on this one
        shared_bus, here = deps.bus, deps.agents_online
        deps.agents_online = lambda: max(len(shared_bus.online()), here())

    bridge = CitizenBridge(client, settings.prefix)
    for name, channel in app.state.channels.items():
        listeners = getattr(channel, "socket_listeners", None)
        if isinstance(listeners, list):
            bridge.channels[name] = channel
            listeners.append(lambda session_id, held, name=name: bridge.socket_changed(name, session_id, held))
        api = getattr(channel, "api", None)
        if isinstance(api, CustomerServiceClient):
            api.token_cache = RedisTokenCache(client, settings.prefix, api.appid)
        if isinstance(getattr(channel, "dedupe", None), SqlDeduplicator):
            channel.dedupe = RedisDeduplicator(sync, key(settings, name))
    delivery = getattr(runtime, "delivery", None)
    if delivery is not None:
        delivery.bridge = bridge
    parts.append(bridge)

    knowledge = getattr(runtime, "knowledge", None)
    if knowledge is not None and hasattr(knowledge, "live_listeners"):
        follower = IndexFollower(knowledge, client, sync, kb_channel(settings), poll_s=index_poll_s)
        knowledge.live_listeners.append(follower.announce)
        runtime.index_follower = follower
        parts.append(follower)

    _run_with_app(app, parts)
    log.info("replicas: console bus, citizen pushes, index reloads and WeChat state go through Redis")
    return parts


def _run_with_app(app: FastAPI, parts: list[Any]) -> None:
    """Start ``parts`` when the app starts and stop them when it stops (around any lifespan it already has)."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        for part in parts:
            await part.start()
        try:
            async with inner(app_) as state:
                yield state
        finally:
            for part in reversed(parts):
                with contextlib.suppress(Exception):
                    await part.aclose()

    app.router.lifespan_context = lifespan
