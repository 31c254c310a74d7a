"""The console bus across replicas: two ``RedisBus`` instances on one real Redis are two replicas."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from assistant.config import RedisConfig
from assistant.handoff.bus import Bus, RedisBus, Subscription
from assistant.redis_client import key, redis_client
from connectors.console.wiring import console_bus


def make_bus(settings: RedisConfig, **kw: Any) -> RedisBus:
    return RedisBus(lambda: redis_client(settings), key(settings, "console"), **kw)


async def next_update(sub: Subscription, timeout: float = 3.0) -> dict[str, Any]:
    return await asyncio.wait_for(sub.get(), timeout)


async def nothing_more(sub: Subscription, wait: float = 0.3) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sub.get(), wait)


def test_without_redis_the_bus_is_in_process() -> None:
    assert type(console_bus(None)) is Bus
    assert type(console_bus(RedisConfig())) is Bus
    assert isinstance(console_bus(RedisConfig(url="redis://127.0.0.1:1/0")), RedisBus)


def test_update_published_on_one_replica_reaches_subscribers_of_both_once(redis_settings: RedisConfig) -> None:
    async def body() -> None:
        a, b = make_bus(redis_settings), make_bus(redis_settings)
        try:
            async with a.subscribe() as on_a, b.subscribe() as on_b:
                await asyncio.wait_for(a.listening.wait(), 3)
                await asyncio.wait_for(b.listening.wait(), 3)
                a.publish({"type": "queue", "op": "added", "n": 1})
                a.publish({"type": "queue", "op": "added", "n": 2})
                b.publish({"type": "message", "conversation_id": "c1", "n": 3})
                # each replica's consoles see every update exactly once, each replica's own in publishing order
                got_b = [await next_update(on_b) for _ in range(3)]
                got_a = [await next_update(on_a) for _ in range(3)]
                assert [u["n"] for u in got_b if u["type"] == "queue"] == [1, 2]
                assert [u["n"] for u in got_a if u["type"] == "queue"] == [1, 2]
                assert sorted(u["n"] for u in got_a) == sorted(u["n"] for u in got_b) == [1, 2, 3]
                await nothing_more(on_a)
                await nothing_more(on_b)
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(body())


def test_other_deployments_prefix_is_not_heard(redis_settings: RedisConfig) -> None:
    async def body() -> None:
        other = RedisConfig(url=redis_settings.url, prefix=redis_settings.prefix + "-other")
        a, b = make_bus(redis_settings), make_bus(other)
        try:
            async with b.subscribe() as on_b:
                await asyncio.wait_for(b.listening.wait(), 3)
                async with a.subscribe():
                    await asyncio.wait_for(a.listening.wait(), 3)
                    a.publish({"type": "queue", "op": "added"})
                    await nothing_more(on_b, 0.5)
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(body())


def test_presence_is_the_union_of_replicas_and_a_silent_replica_is_forgotten(redis_settings: RedisConfig) -> None:
    async def body() -> None:
        now = [1000.0]
        a = make_bus(redis_settings, presence_every_s=10.0, clock=lambda: now[0])
        b = make_bus(redis_settings, presence_every_s=10.0, clock=lambda: now[0])
        try:
            async with b.subscribe() as on_b, a.subscribe():
                await asyncio.wait_for(a.listening.wait(), 3)
                await asyncio.wait_for(b.listening.wait(), 3)
                a.publish({"type": "presence", "online": ["wang"]})
                assert (await next_update(on_b))["online"] == ["wang"]
                b.publish({"type": "presence", "online": ["li"]})
                assert (await next_update(on_b))["online"] == ["li", "wang"]
                # replica A goes silent (killed): after three announcement periods its agents are no longer online
                now[0] += 31
                assert b.online() == ["li"]
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(body())


def test_publish_from_a_worker_thread_is_handed_to_the_loop(redis_settings: RedisConfig) -> None:
    async def body() -> None:
        a, b = make_bus(redis_settings), make_bus(redis_settings)
        try:
            async with a.subscribe() as on_a, b.subscribe() as on_b:
                await asyncio.wait_for(b.listening.wait(), 3)
                await asyncio.to_thread(a.publish, {"type": "ticket", "op": "added", "ref": "LY1"})
                assert (await next_update(on_a))["ref"] == "LY1"
                assert (await next_update(on_b))["ref"] == "LY1"
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(body())


def test_a_replica_that_loses_redis_reconnects_resyncs_its_consoles_and_sends_what_it_kept(
    redis_settings: RedisConfig,
) -> None:
    from urllib.parse import urlsplit

    from tcp_proxy import TcpProxy

    target = urlsplit(redis_settings.url)
    with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        via_proxy = RedisConfig(url=f"redis://127.0.0.1:{proxy.port}{target.path}", prefix=redis_settings.prefix)

        async def body() -> None:
            a = make_bus(via_proxy, backoff_cap_s=0.3)
            b = make_bus(redis_settings, backoff_cap_s=0.3)
            try:
                async with a.subscribe() as on_a, b.subscribe() as on_b:
                    await asyncio.wait_for(a.listening.wait(), 3)
                    await asyncio.wait_for(b.listening.wait(), 3)
                    proxy.cut()
                    await asyncio.sleep(1.5)  # a's listener hits the reset on its next read
                    # a's own consoles still hear a's updates at once; b hears them once Redis is back
                    a.publish({"type": "queue", "op": "added", "n": 1})
                    assert (await next_update(on_a))["n"] == 1
                    await nothing_more(on_b, 0.5)
                    proxy.restore()
                    assert (await next_update(on_b, 20))["n"] == 1
                    # a may have missed b's updates meanwhile: its consoles are told to reload
                    assert (await next_update(on_a, 20))["type"] == "resync"
                    b.publish({"type": "queue", "op": "added", "n": 2})
                    assert (await next_update(on_a))["n"] == 2
            finally:
                await a.aclose()
                await b.aclose()

        asyncio.run(body())
