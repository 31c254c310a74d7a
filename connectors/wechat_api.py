"""WeChat Official Account customer-service message API (客服消息), for replies that miss the 5-second window
and for staff replies. Async httpx; the base URL is configurable so tests point it at a local fake server.

The access token is cached in process, or in Redis for several replicas (``RedisTokenCache``): WeChat limits how
often a token may be fetched and a new token soon invalidates the old one, so replicas share one token and only
one of them refreshes it at a time (a short lock in Redis; the others wait for the new token to appear).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

log = logging.getLogger(__name__)

# errcodes: the token is invalid or expired -> refresh once; outside the 48-hour window -> not deliverable
TOKEN_ERRORS = {40001, 40014, 42001}
OUT_OF_WINDOW = {45015, 45047}


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    errcode: int = 0
    reason: str = ""

    @property
    def outside_window(self) -> bool:
        return self.errcode in OUT_OF_WINDOW


class WeChatApiError(RuntimeError):
    pass


# refresh 5 minutes early: a token that expires mid-request costs a retry
EARLY_S = 300.0


def cache_seconds(expires_in: float) -> float:
    """How long to use a token WeChat says lives ``expires_in`` seconds (shorter lifetimes: half of it)."""
    return expires_in - EARLY_S if expires_in > 2 * EARLY_S else max(1.0, expires_in / 2)


class TokenCache(Protocol):
    """Where replicas share the access token, and the lock that lets one of them refresh it."""

    lock_ttl_s: float

    async def get(self) -> str | None: ...

    async def put(self, token: str, ttl_s: float) -> None: ...

    async def acquire(self) -> str | None:
        """A lock handle when this caller may refresh now, None when another one is refreshing."""
        ...

    async def release(self, handle: str) -> None: ...


# delete the lock only if it is still ours (it may have expired and been taken by another replica)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RedisTokenCache:
    """The access token in Redis under ``<prefix>:wechat:token:<appid>``, with a refresh lock beside it.

    ``client_factory`` makes an asyncio client (``assistant.redis_client.redis_client``); one is made per event
    loop, because a client's connections belong to the loop that opened them."""

    def __init__(self, client_factory: Any, prefix: str, appid: str, lock_ttl_s: float = 10.0) -> None:
        self._factory = client_factory
        self.key = f"{prefix}:wechat:token:{appid}"
        self.lock_key = f"{self.key}:refresh"
        self.lock_ttl_s = lock_ttl_s
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _redis(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client, self._loop = self._factory(), loop
        return self._client

    async def get(self) -> str | None:
        value = await self._redis().get(self.key)
        return str(value) if value else None

    async def put(self, token: str, ttl_s: float) -> None:
        await self._redis().set(self.key, token, px=max(1, int(ttl_s * 1000)))

    async def acquire(self) -> str | None:
        handle = secrets.token_hex(8)
        ok = await self._redis().set(self.lock_key, handle, nx=True, px=int(self.lock_ttl_s * 1000))
        return handle if ok else None

    async def release(self, handle: str) -> None:
        await self._redis().eval(_RELEASE, 1, self.lock_key, handle)


class CustomerServiceClient:
    def __init__(self, appid: str, secret: str, base_url: str = "https://api.weixin.qq.com", timeout_s: float = 5.0,
                 token_cache: TokenCache | None = None) -> None:
        self.appid = appid
        self.secret = secret
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        # None: this process's own cache (one replica); set by the composition root when Redis is configured
        self.token_cache = token_cache
        self.token_fetches = 0

    async def _fetch_token(self) -> tuple[str, float]:
        self.token_fetches += 1
        resp = await self._client.get(
            f"{self.base_url}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        data = resp.json()
        if "access_token" not in data:
            raise WeChatApiError(f"access token refused: errcode={data.get('errcode')} {data.get('errmsg', '')}")
        return str(data["access_token"]), float(data.get("expires_in", 7200))

    async def access_token(self, force: bool = False, stale: str | None = None) -> str:
        """The current token. ``force``: the token is known to be bad (WeChat said 40001/42001) and must be
        replaced; ``stale`` names the bad one, so a token another replica has already refreshed is used as is."""
        async with self._lock:
            if self.token_cache is not None:
                try:
                    return await self._shared_token(self.token_cache, force, stale)
                except WeChatApiError:
                    raise
                except Exception as err:  # Redis away: this replica fetches its own rather than fail the send
                    log.warning("wechat token cache unreachable (%s): using this process's own", type(err).__name__)
            if force and stale is not None and self._token and self._token != stale:
                return self._token
            if not force and self._token and time.monotonic() < self._expires_at:
                return self._token
            token, expires_in = await self._fetch_token()
            self._token, self._expires_at = token, time.monotonic() + cache_seconds(expires_in)
            return token

    async def _shared_token(self, cache: TokenCache, force: bool, stale: str | None) -> str:
        cached = await cache.get()
        if force and stale is None:
            stale = cached

        def usable(token: str | None) -> bool:
            return bool(token) and not (force and token == stale)

        if cached is not None and usable(cached):
            return cached
        deadline = time.monotonic() + cache.lock_ttl_s
        while time.monotonic() < deadline:
            handle = await cache.acquire()
            if handle is not None:
                try:
                    # another replica may have refreshed between our read and our lock
                    cached = await cache.get()
                    if cached is not None and usable(cached):
                        return cached
                    token, expires_in = await self._fetch_token()
                    await cache.put(token, cache_seconds(expires_in))
                    return token
                finally:
                    await cache.release(handle)
            await asyncio.sleep(0.05)
            cached = await cache.get()
            if cached is not None and usable(cached):
                return cached
        # the replica holding the lock never finished (it died mid-refresh): refresh here rather than fail
        token, expires_in = await self._fetch_token()
        await cache.put(token, cache_seconds(expires_in))
        return token

    async def send_text(self, openid: str, content: str) -> SendResult:
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        token: str | None = None
        for attempt in range(2):
            try:
                token = await self.access_token(force=attempt > 0, stale=token)
                resp = await self._client.post(
                    f"{self.base_url}/cgi-bin/message/custom/send", params={"access_token": token}, json=body
                )
                data = resp.json()
            except (httpx.HTTPError, ValueError, WeChatApiError) as err:
                log.warning("wechat customer-service send failed: %s", type(err).__name__)
                return SendResult(False, -1, type(err).__name__)
            code = int(data.get("errcode", 0))
            if code == 0:
                return SendResult(True)
            if code in TOKEN_ERRORS and attempt == 0:
                continue
            return SendResult(False, code, str(data.get("errmsg", "")))
        return SendResult(False, -1, "token refresh failed")

    async def aclose(self) -> None:
        await self._client.aclose()
