"""WeChat state shared by replicas in real Redis: message dedupe keys and the access token.

The token endpoint is a real HTTP server on loopback (uvicorn in a thread) that counts its calls, hands out a new
token each time and refuses tokens it has revoked with errcode 40001, as WeChat does.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from demo_project import serve, stop
from fastapi import FastAPI, Request

from assistant.config import RedisConfig
from assistant.errors import ApiError
from assistant.redis_client import key, redis_client
from connectors.redis_dedupe import RedisDeduplicator
from connectors.redis_sync import sync_redis_client
from connectors.wechat_api import CustomerServiceClient, RedisTokenCache, cache_seconds


# --- dedupe ---------------------------------------------------------------------------------------------------
def test_a_message_is_claimed_once_across_replicas_and_released_for_a_retry(redis_settings: RedisConfig) -> None:
    a = RedisDeduplicator(sync_redis_client(redis_settings), key(redis_settings, "wechat"))
    b = RedisDeduplicator(sync_redis_client(redis_settings), key(redis_settings, "wechat"))
    assert a.claim("wx:msg:1001") is True
    assert b.claim("wx:msg:1001") is False  # WeChat's retry reached the other replica
    assert a.claim("wx:msg:1001") is False
    assert b.claim("wx:msg:1002") is True
    ttl = a.client.ttl(f"{redis_settings.prefix}:wechat:dedupe:wx:msg:1001")
    assert 290 <= ttl <= 300  # SET NX EX 300: keys expire by themselves
    a.release("wx:msg:1001")  # processing failed: the next retry is taken, on any replica
    assert b.claim("wx:msg:1001") is True


def test_concurrent_claims_of_one_message_have_exactly_one_winner(redis_settings: RedisConfig) -> None:
    replicas = [RedisDeduplicator(sync_redis_client(redis_settings), key(redis_settings, "wechat")) for _ in range(8)]
    wins: list[bool] = []
    barrier = threading.Barrier(len(replicas))

    def claim(d: RedisDeduplicator) -> None:
        barrier.wait()
        wins.append(d.claim("wx:msg:race"))

    threads = [threading.Thread(target=claim, args=(d,)) for d in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_dedupe_without_redis_fails_fast_with_a_retryable_503() -> None:
    dead = RedisDeduplicator(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1), "x")
    started = time.monotonic()
    with pytest.raises(ApiError) as err:
        dead.claim("wx:msg:1")
    assert time.monotonic() - started < 5
    assert err.value.status == 503 and err.value.headers == {"Retry-After": "5"}
    dead.release("wx:msg:1")  # logged, not raised: the key would expire anyway


# --- access token -----------------------------------------------------------------------------------------------
@dataclass
class FakeTokenServer:
    """``/cgi-bin/token`` issues tok-1, tok-2, ... (slowly, so concurrent callers overlap);
    ``/cgi-bin/message/custom/send`` accepts only tokens issued and not revoked."""

    expires_in: int = 7200
    delay_s: float = 0.2
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    sent: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()
        counter = itertools.count(1)

        @app.get("/cgi-bin/token")
        async def token(appid: str, secret: str) -> dict[str, Any]:
            if secret != "s3cret":
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            await asyncio.sleep(self.delay_s)
            value = f"tok-{next(counter)}"
            self.issued.append(value)
            return {"access_token": value, "expires_in": self.expires_in}

        @app.post("/cgi-bin/message/custom/send")
        async def send(request: Request) -> dict[str, Any]:
            token = request.query_params.get("access_token", "")
            if token not in self.issued or token in self.revoked:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            body = await request.json()
            self.sent.append((token, body["text"]["content"]))
            return {"errcode": 0, "errmsg": "ok"}

        return app


@pytest.fixture()
def wechat() -> Iterator[FakeTokenServer]:
    fake = FakeTokenServer()
    live = serve(fake.app())
    fake.url = live.url
    try:
        yield fake
    finally:
        stop(live)


def replica_client(settings: RedisConfig, fake: FakeTokenServer) -> CustomerServiceClient:
    cache = RedisTokenCache(lambda: redis_client(settings), settings.prefix, "wxapp")
    return CustomerServiceClient("wxapp", "s3cret", fake.url, token_cache=cache)


def test_replicas_share_one_token_and_only_one_fetches_it(redis_settings: RedisConfig, wechat: FakeTokenServer) -> None:
    async def body() -> None:
        replicas = [replica_client(redis_settings, wechat) for _ in range(4)]
        tokens = await asyncio.gather(*(r.access_token() for r in replicas for _ in range(5)))
        assert set(tokens) == {"tok-1"} and wechat.issued == ["tok-1"]
        assert sum(r.token_fetches for r in replicas) == 1
        ttl_ms = await redis_client(redis_settings).pttl(f"{redis_settings.prefix}:wechat:token:wxapp")
        # cached until five minutes before WeChat's expiry
        assert 7200_000 - 300_000 - 5_000 < ttl_ms <= 7200_000 - 300_000
        for r in replicas:
            await r.aclose()

    asyncio.run(body())


def test_a_revoked_token_is_refreshed_once_for_all_replicas(redis_settings: RedisConfig, wechat: FakeTokenServer) -> None:
    async def body() -> None:
        a, b = replica_client(redis_settings, wechat), replica_client(redis_settings, wechat)
        assert (await a.send_text("openid-1", "您好")).delivered
        wechat.revoked.add("tok-1")  # WeChat answers 40001 from now on
        # both replicas find out at once; one refresh between them, and both messages go out with the new token
        results = await asyncio.gather(a.send_text("openid-1", "第二条"), b.send_text("openid-2", "第三条"))
        assert all(r.delivered for r in results)
        assert wechat.issued == ["tok-1", "tok-2"]
        assert [t for t, _ in wechat.sent] == ["tok-1", "tok-2", "tok-2"]
        # a forced refresh that names a token already replaced uses the replacement
        assert await b.access_token(force=True, stale="tok-1") == "tok-2"
        assert wechat.issued == ["tok-1", "tok-2"]
        await a.aclose()
        await b.aclose()

    asyncio.run(body())


def test_the_cached_token_expires_early(redis_settings: RedisConfig, wechat: FakeTokenServer) -> None:
    assert cache_seconds(7200) == 6900 and cache_seconds(2) == 1.0
    wechat.expires_in = 2  # a short-lived token is cached for half its life

    async def body() -> None:
        a = replica_client(redis_settings, wechat)
        assert await a.access_token() == "tok-1"
        assert await a.access_token() == "tok-1"
        await asyncio.sleep(1.2)
        assert await a.access_token() == "tok-2"
        await a.aclose()

    asyncio.run(body())


def test_without_redis_the_token_comes_from_wechat_directly(wechat: FakeTokenServer) -> None:
    async def body() -> None:
        dead = RedisTokenCache(lambda: redis_client(RedisConfig(url="redis://127.0.0.1:1/0")), "x", "wxapp")
        client = CustomerServiceClient("wxapp", "s3cret", wechat.url, token_cache=dead)
        assert (await client.send_text("openid-1", "在吗")).delivered
        assert wechat.issued == ["tok-1"]
        await client.aclose()

    asyncio.run(body())
