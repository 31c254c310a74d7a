"""Pushing to a citizen's socket held by another replica (several replicas behind a load balancer).

A citizen's web-chat WebSocket lives on one replica; the agent who answers may be logged in on another. Each
replica subscribes to one Redis channel per citizen session it holds a socket for (from the first socket of the
session to the last), ``<prefix>:push:<channel>:<session>``. A push is PUBLISHed there; the replica holding the
socket sends it. Redis answers PUBLISH with the number of subscribers, i.e. the number of replicas holding a
socket of that citizen, so the sender knows whether anybody could show the message (``delivered``) without a
round trip of acknowledgements. The replica that pushes serves its own sockets directly and ignores its own
message when it comes back.

If Redis drops, the listener reconnects with backoff and subscribes again to every session it still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from assistant.agent import BotReply, Button
from assistant.handoff.bus import Backoff, stop_tasks

log = logging.getLogger(__name__)

# Subscribed always, so the listener's connection exists before the first citizen connects (redis-py reads
# messages only from a subscribed connection).
_IDLE = "_"


def reply_to_json(reply: BotReply) -> dict[str, Any]:
    return {"text": reply.text, "buttons": [{"title": b.title, "payload": b.payload} for b in reply.buttons],
            "citations": list(reply.citations), "custom": reply.custom, "image": reply.image}


def reply_from_json(data: dict[str, Any]) -> BotReply:
    return BotReply(
        text=data.get("text"),
        buttons=tuple(Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in data.get("buttons") or []),
        citations=tuple(dict(c) for c in data.get("citations") or []),
        custom=data.get("custom"),
        image=data.get("image"),
    )


class CitizenBridge:
    """Cross-replica pushes to the sockets of one or more channels (``channels``: name -> channel with an async
    ``send(recipient_id, replies) -> bool`` that reaches this replica's sockets)."""

    def __init__(self, client_factory: Callable[[], Any], prefix: str, *, backoff_cap_s: float = 5.0) -> None:
        self._client_factory = client_factory
        self.prefix = prefix
        self.origin = uuid.uuid4().hex
        self.channels: dict[str, Any] = {}
        self._held: set[str] = set()
        self._backoff_cap = backoff_cap_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._sub_lock: asyncio.Lock | None = None
        self.listening = asyncio.Event()

    def topic(self, channel: str, recipient_id: str) -> str:
        return f"{self.prefix}:push:{channel}:{recipient_id}"

    # --- the replica holding sockets ----------------------------------------------------------------------
    def socket_changed(self, channel: str, recipient_id: str, held: bool) -> None:
        """Called by a channel when its first socket for ``recipient_id`` opens (``held``) or its last closes."""
        topic = self.topic(channel, recipient_id)
        if held:
            self._held.add(topic)
        else:
            self._held.discard(topic)
        loop = self._current_loop()
        if loop is None:
            return
        self._ensure_started(loop)
        # the listener subscribes to everything held whenever it (re)connects; this covers a running connection
        loop.create_task(self._apply(topic, held))

    async def _apply(self, topic: str, held: bool) -> None:
        await self.listening.wait()
        assert self._sub_lock is not None
        async with self._sub_lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                if held and topic in self._held:
                    await pubsub.subscribe(topic)
                elif not held and topic not in self._held:
                    await pubsub.unsubscribe(topic)
            except Exception as err:  # the listener's reconnect subscribes again to what is held
                log.warning("citizen bridge: (un)subscribe failed (%s)", type(err).__name__)

    # --- the replica pushing ------------------------------------------------------------------------------
    async def push(self, channel: str, recipient_id: str, replies: Sequence[BotReply]) -> int:
        """Publish ``replies`` for ``recipient_id``; the number of OTHER replicas holding a socket of theirs
        (0 when Redis is unreachable: the message stays in the conversation's history)."""
        loop = asyncio.get_running_loop()
        self._ensure_started(loop)
        topic = self.topic(channel, recipient_id)
        payload = json.dumps({"o": self.origin, "c": channel, "r": recipient_id,
                              "m": [reply_to_json(r) for r in replies]}, ensure_ascii=False, default=str)
        try:
            receivers = int(await self._client.publish(topic, payload))
        except Exception as err:
            log.warning("citizen bridge: publishing a push failed (%s)", type(err).__name__)
            return 0
        # our own subscription counts in Redis's answer while we hold a socket of this citizen too
        return max(0, receivers - (1 if topic in self._held and self.listening.is_set() else 0))

    # --- listener -----------------------------------------------------------------------------------------
    @staticmethod
    def _current_loop() -> asyncio.AbstractEventLoop | None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            return None

    async def start(self) -> None:
        self._ensure_started(asyncio.get_running_loop())

    def _ensure_started(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop and self._task is not None and not self._task.done():
            return
        self._loop = loop
        self._client = self._client_factory()
        self._sub_lock = asyncio.Lock()
        self.listening = asyncio.Event()
        self._task = loop.create_task(self._listen(), name="citizen-bridge-listen")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks([task])
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._loop = None

    async def _listen(self) -> None:
        backoff = Backoff(cap=self._backoff_cap)
        lost = False
        assert self._sub_lock is not None
        while True:
            pubsub = self._client.pubsub()
            try:
                async with self._sub_lock:
                    await pubsub.subscribe(self.topic(_IDLE, _IDLE), *sorted(self._held))
                    self._pubsub = pubsub
                self.listening.set()
                if lost:
                    log.info("citizen bridge: Redis is back; listening for %d sessions", len(self._held))
                    lost = False
                backoff.reset()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if not lost:
                    log.warning("citizen bridge: lost Redis (%s); reconnecting with backoff", type(err).__name__)
                lost = True
                self.listening.clear()
                await backoff.wait()
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _on_message(self, data: Any) -> None:
        try:
            envelope = json.loads(data)
            origin, channel, recipient = str(envelope["o"]), str(envelope["c"]), str(envelope["r"])
            replies = [reply_from_json(m) for m in envelope["m"]]
        except (TypeError, ValueError, KeyError, AttributeError):
            log.warning("citizen bridge: ignoring a malformed push")
            return
        if origin == self.origin:
            return  # the pushing replica served its own sockets already
        target = self.channels.get(channel)
        if target is None:
            return
        try:
            await target.send(recipient, replies)
        except Exception:
            log.exception("citizen bridge: local delivery on %s failed", channel)
