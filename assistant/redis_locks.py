"""Per-conversation locks in Redis, so several replicas process one conversation's messages one at a time, in the
order they arrived.

``RedisLockStore.lock(conversation_id)`` is the same seam as ``InMemoryLockStore``:

- the lock is a key set with ``SET NX PX`` to a random token; only the holder's token deletes it (Lua
  compare-and-delete), so a late release never frees someone else's lock;
- while held, a background task renews the lease every third of it; a replica killed with SIGKILL stops renewing
  and its lock expires after at most ``lease_s``, so a dead replica blocks a conversation no longer than that;
- waiters queue in a sorted set by first arrival time (Redis's clock, the same for every replica), and only the
  head of the queue may take the lock: messages that arrive while a turn runs are processed first-come
  first-served, whichever replica received them. A waiter that stops polling (its replica died) leaves the queue
  after ``WAITER_TTL_MS``;
- a message waiting longer than ``wait_s`` is refused with 503 and a retry hint rather than held until the
  HTTP timeout.

The lock alone cannot stop a holder that stalls past its lease (GC pause, blocked event loop) from writing after
the next holder: that is fenced at the write (``TrackerStore.append(..., after=seq)``, see ``assistant.agent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis

from assistant.errors import ApiError

log = logging.getLogger(__name__)

# a waiter polls at most every MAX_POLL_S; one not seen for WAITER_TTL_MS has gone away and loses its place
MIN_POLL_S = 0.002
MAX_POLL_S = 0.05
WAITER_TTL_MS = 3000

# KEYS: lock, queue (zset token -> arrival ms), seen (hash token -> last poll ms)
# ARGV: token, lease ms, waiter ttl ms
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], 'NX', now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], now)
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
while head and head ~= ARGV[1] do
  local seen = tonumber(redis.call('HGET', KEYS[3], head) or '0')
  if now - seen <= ttl then break end
  redis.call('ZREM', KEYS[2], head)
  redis.call('HDEL', KEYS[3], head)
  head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
end
local got = 0
if head == ARGV[1] and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  got = 1
end
-- the queue disappears by itself once nobody waits
redis.call('PEXPIRE', KEYS[2], ttl * 2)
redis.call('PEXPIRE', KEYS[3], ttl * 2)
return got
"""

# KEYS: lock; ARGV: token
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: lock; ARGV: token, lease ms
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: queue, seen; ARGV: token
_LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""


def conversation_busy(retry_after_s: int) -> ApiError:
    return ApiError(
        503,
        "conversation_busy",
        "上一条消息仍在处理中，请稍后重试",
        "The previous message of this conversation is still being processed; retry shortly",
        {"Retry-After": str(max(1, retry_after_s))},
    )


class RedisLockStore:
    """Conversation locks shared by every replica that uses the same Redis and key prefix."""

    def __init__(self, client: aioredis.Redis, prefix: str, *, lease_s: float = 10.0, wait_s: float = 20.0,
                 recent: int = 10_000) -> None:
        self.client = client
        self.prefix = prefix
        self.lease_ms = int(lease_s * 1000)
        self.wait_s = wait_s
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._leave = client.register_script(_LEAVE)
        # seconds each recent acquisition waited (for figures and logs; bounded)
        self.waits: deque[float] = deque(maxlen=recent)
        self.lost = 0

    def _keys(self, conversation_id: str) -> list[str]:
        base = f"{self.prefix}:lock:{conversation_id}"
        return [base, f"{base}:queue", f"{base}:seen"]

    @asynccontextmanager
    async def lock(self, conversation_id: str) -> AsyncIterator[None]:
        keys = self._keys(conversation_id)
        token = secrets.token_hex(16)
        started = time.monotonic()
        await self._wait_for(keys, token, started)
        waited = time.monotonic() - started
        self.waits.append(waited)
        if waited > 1.0:
            log.info("conversation lock waited %.2f s", waited)
        renewer = asyncio.create_task(self._keep(keys[0], token))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            # a release that cannot reach Redis leaves the lock to expire with its lease
            try:
                await self._release(keys=keys[:1], args=[token])
            except Exception as err:
                log.warning("conversation lock not released (%s); it expires with its lease", type(err).__name__)

    async def _wait_for(self, keys: list[str], token: str, started: float) -> None:
        pause = MIN_POLL_S
        try:
            while True:
                if await self._acquire(keys=keys, args=[token, self.lease_ms, WAITER_TTL_MS]):
                    return
                if time.monotonic() - started > self.wait_s:
                    raise conversation_busy(int(self.lease_ms / 1000))
                # jittered backoff: a turn takes tens of milliseconds, so the first polls come quickly
                await asyncio.sleep(pause * random.uniform(0.5, 1.0))
                pause = min(pause * 2, MAX_POLL_S)
        except BaseException:
            # gave up or cancelled: leave the queue so the next waiter is not held up by our place
            with contextlib.suppress(Exception):
                await self._leave(keys=keys[1:], args=[token])
            raise

    async def _keep(self, key: str, token: str) -> None:
        """Renew the lease while the turn runs; a failed renewal is logged and the turn goes on. A turn that
        outlived its lease (stalled longer than it, so this could not renew in time) is fenced by the tracker
        store instead: each write names the sequence number the turn read, so once another replica has taken the
        lock and written, the stalled turn's next write is refused and its message fails with a retryable 503."""
        interval = self.lease_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                still = await self._renew(keys=[key], args=[token, self.lease_ms])
            except Exception as err:
                log.warning("conversation lock renewal failed (%s)", type(err).__name__)
                continue
            if not still:
                self.lost += 1
                log.error("conversation lock lost while held (stalled longer than the %d ms lease)", self.lease_ms)
                return

    def stats(self) -> dict[str, Any]:
        """Recent acquisitions: how many, and the waits' p50/p99/max in milliseconds."""
        waits = sorted(self.waits)
        if not waits:
            return {"acquired": 0, "lost": self.lost}

        def pct(p: float) -> float:
            return round(waits[min(len(waits) - 1, int(p * len(waits)))] * 1000, 2)

        return {"acquired": len(waits), "lost": self.lost, "wait_p50_ms": pct(0.5), "wait_p99_ms": pct(0.99),
                "wait_max_ms": round(waits[-1] * 1000, 2)}
