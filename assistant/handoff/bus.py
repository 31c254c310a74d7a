"""Live updates for staff consoles: a publish/subscribe hub, in-process or across replicas through Redis.

Each console WebSocket is one subscriber with its own bounded queue; a slow tab loses its oldest updates (and is
told to reload) instead of slowing the conversation down.

``Bus`` is the one-process hub. ``RedisBus`` keeps the same ``publish``/``subscribe`` seam for several replicas:
an update is handed to this replica's subscribers at once (a Redis outage never silences the consoles of the
replica where something happened) and published on one Redis channel; each replica listens once on that channel
and fans what other replicas published out to its own subscribers. Order is kept per publishing replica (one
sender task per replica, one channel). When Redis drops, both tasks retry with backoff; after a gap the local
consoles get ``resync`` (they reload the queue) because updates may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger(__name__)

Update = dict[str, Any]
RESYNC: Update = {"type": "resync"}


class Subscription:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[Update] = asyncio.Queue(size)
        self.overflowed = False

    def put(self, update: Update) -> None:
        try:
            self.queue.put_nowait(update)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(dict(RESYNC))

    async def get(self) -> Update:
        return await self.queue.get()


class Bus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subs: set[Subscription] = set()
        self._size = queue_size

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, update: Update) -> None:
        self._fan_out(update)

    def _fan_out(self, update: Update) -> None:
        for sub in list(self._subs):
            sub.put(update)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        sub = Subscription(self._size)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)

    async def aclose(self) -> None:
        """Nothing to release in process; ``RedisBus`` stops its tasks."""


class Backoff:
    """Delays between reconnect attempts: doubling from ``first`` up to ``cap``; ``reset`` after a success."""

    def __init__(self, first: float = 0.2, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap
        self.next = first

    def reset(self) -> None:
        self.next = self.first

    async def wait(self) -> None:
        delay, self.next = self.next, min(self.next * 2, self.cap)
        await asyncio.sleep(delay)


async def stop_tasks(tasks: list[asyncio.Task[None]], timeout_s: float = 5.0) -> None:
    """Cancel ``tasks`` and wait for them to end. Cancelled again until they do: a cancellation that lands inside
    the Redis client's own timeout handling can be swallowed (Python 3.11's ``asyncio.timeout`` race), and a task
    cancelled once would then wait forever."""
    deadline = time.monotonic() + timeout_s
    pending = [t for t in tasks if not t.done()]
    while pending and time.monotonic() < deadline:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.2)
        pending = [t for t in pending if not t.done()]
    if pending:
        log.warning("%d background task(s) did not stop: %s", len(pending), [t.get_name() for t in pending])
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" noise


class RedisBus(Bus):
    """The console bus across replicas (see the module docstring).

    ``client_factory`` makes an asyncio Redis client (``assistant.redis_client.redis_client``); a new one is made
    for each event loop the bus runs on, because a client's connections belong to the loop that opened them.

    Presence (which staff have a console open) is per replica: each replica's ``presence`` update names only its
    own sockets. The bus keeps the latest list of every replica and hands subscribers the union, re-announces its
    own list every ``presence_every_s`` and forgets a replica not heard from for three periods (a killed replica's
    agents do not stay "online").
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        channel: str,
        *,
        queue_size: int = 1000,
        outbox_size: int = 10_000,
        presence_every_s: float = 30.0,
        backoff_cap_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(queue_size)
        self._client_factory = client_factory
        self.channel = channel
        self.origin = uuid.uuid4().hex
        self._outbox_size = outbox_size
        self._presence_every = presence_every_s
        self._backoff_cap = backoff_cap_s
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._outbox: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped = False
        self._presence: dict[str, tuple[float, list[str]]] = {}
        # set once the listener is subscribed (tests and readiness wait for it)
        self.listening = asyncio.Event()
        self.connected = False

    # --- the seam -----------------------------------------------------------------------------------------
    def publish(self, update: Update) -> None:
        loop = self._running_loop()
        if loop is None and self._loop is not None and self._loop.is_running():
            # called from a worker thread: hand over to the loop the bus runs on
            self._loop.call_soon_threadsafe(self.publish, update)
            return
        self._deliver_local(update, self.origin)
        if loop is not None:
            self._ensure_started(loop)
            self._enqueue(json.dumps({"o": self.origin, "u": update}, ensure_ascii=False, default=str))

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        self._ensure_started(asyncio.get_running_loop())
        async with super().subscribe() as sub:
            yield sub

    async def start(self) -> None:
        """Start listening now (the first publish or subscribe would start it anyway)."""
        self._ensure_started(asyncio.get_running_loop())

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._loop = None
        self.listening = asyncio.Event()
        self.connected = False

    # --- local fan-out ------------------------------------------------------------------------------------
    def _deliver_local(self, update: Update, origin: str) -> None:
        if update.get("type") == "presence":
            online = update.get("online")
            self._presence[origin] = (self._clock(), [str(u) for u in online] if isinstance(online, list) else [])
            update = {**update, "online": self.online()}
        self._fan_out(update)

    def online(self) -> list[str]:
        """Staff with a console open on any replica heard from recently."""
        horizon = self._clock() - 3 * self._presence_every
        for origin in [o for o, (seen, _) in self._presence.items() if seen < horizon and o != self.origin]:
            del self._presence[origin]
        return sorted({u for _, users in self._presence.values() for u in users})

    # --- tasks --------------------------------------------------------------------------------------------
    @staticmethod
    def _running_loop() -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    def _ensure_started(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop and self._tasks and not all(t.done() for t in self._tasks):
            return
        # first use, or the loop it ran on has gone (a test client's portal): start afresh on this one
        self._loop = loop
        self._client = self._client_factory()
        self._outbox = asyncio.Queue(self._outbox_size)
        self.listening = asyncio.Event()
        self._tasks = [loop.create_task(self._listen(), name="redis-bus-listen"),
                       loop.create_task(self._send(), name="redis-bus-send")]
        if self._presence_every > 0:
            self._tasks.append(loop.create_task(self._announce(), name="redis-bus-presence"))

    def _enqueue(self, payload: str) -> None:
        assert self._outbox is not None
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            # Redis has been away for a long time: drop the oldest; other replicas resync when it is back
            with contextlib.suppress(asyncio.QueueEmpty):
                self._outbox.get_nowait()
            self._outbox.put_nowait(payload)
            self._dropped = True

    async def _send(self) -> None:
        assert self._outbox is not None
        backoff = Backoff(cap=self._backoff_cap)
        while True:
            payload = await self._outbox.get()
            while True:
                try:
                    if self._dropped:
                        await self._client.publish(self.channel, json.dumps({"o": self.origin, "u": RESYNC}))
                        self._dropped = False
                    await self._client.publish(self.channel, payload)
                    backoff.reset()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    log.warning("console bus: publishing to Redis failed (%s); retrying", type(err).__name__)
                    await backoff.wait()

    async def _listen(self) -> None:
        backoff = Backoff(cap=self._backoff_cap)
        lost = False
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.connected = True
                self.listening.set()
                backoff.reset()
                confirmed = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message.get("type") == "message":
                        self._on_message(message.get("data"))
                    elif message.get("type") == "subscribe":
                        # Redis confirms each subscription; a second confirmation means the client reconnected
                        # by itself (a short drop): either way updates may have been missed meanwhile
                        if lost or confirmed:
                            log.info("console bus: Redis is back; consoles on this replica resync")
                            self._fan_out(dict(RESYNC))
                        confirmed, lost = True, False
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if not lost:
                    log.warning("console bus: lost Redis (%s); reconnecting with backoff", type(err).__name__)
                lost = True
                self.connected = False
                await backoff.wait()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _on_message(self, data: Any) -> None:
        try:
            envelope = json.loads(data)
            origin, update = str(envelope["o"]), envelope["u"]
        except (TypeError, ValueError, KeyError):
            log.warning("console bus: ignoring a malformed message on %s", self.channel)
            return
        if origin == self.origin or not isinstance(update, dict):
            return  # this replica's own update reached its subscribers when it was published
        self._deliver_local(update, origin)

    async def _announce(self) -> None:
        while True:
            await asyncio.sleep(self._presence_every)
            mine = self._presence.get(self.origin)
            if mine is not None:
                self._enqueue(json.dumps({"o": self.origin, "u": {"type": "presence", "online": mine[1]}}))

