"""Every replica serves the knowledge-base version published on any of them, within seconds, without a restart.

The replica that publishes (or rolls back) writes the index under the shared index directory, moves the ``LIVE``
pointer, then ``announce`` sends ``kb.live`` on a Redis channel (``gov-assistant kb publish|rollback`` sends the same
through ``announce_live``). Every replica listens and calls the knowledge
service's ``reload_if_changed`` in a worker thread (loading an index is disk and CPU work that must not stall the
event loop). A message missed while Redis was away is made up by a poll of the pointer every ``poll_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.config import RedisConfig
from assistant.handoff.bus import Backoff, stop_tasks
from assistant.redis_client import key

log = logging.getLogger(__name__)


def kb_channel(settings: RedisConfig) -> str:
    """The channel ``kb.live`` goes on: one per deployment (``redis.prefix``)."""
    return key(settings, "kb")


def announce_live(sync_client: Any, channel: str, version_id: int) -> bool:
    """Tell the replicas listening on ``channel`` that ``version_id`` is live; False when Redis could not be
    reached, which is logged and otherwise harmless: they find the version at their next poll of ``LIVE``."""
    try:
        sync_client.publish(channel, json.dumps({"type": "kb.live", "version": version_id}))
    except Exception as err:
        log.warning("kb.live for version %s not sent (%s); replicas pick it up by polling", version_id,
                    type(err).__name__)
        return False
    return True


class IndexFollower:
    def __init__(
        self,
        knowledge: Any,
        client_factory: Callable[[], Any],
        sync_client: Any,
        channel: str,
        *,
        poll_s: float = 10.0,
        backoff_cap_s: float = 5.0,
    ) -> None:
        """``knowledge``: a ``knowledge.service.KnowledgeService``; ``client_factory`` makes the asyncio Redis
        client the listener uses; ``sync_client`` is a blocking one for ``announce`` (called from the thread
        that published)."""
        self.knowledge = knowledge
        self._client_factory = client_factory
        self._sync = sync_client
        self.channel = channel
        self.poll_s = poll_s
        self._backoff_cap = backoff_cap_s
        self._tasks: list[asyncio.Task[None]] = []
        self._client: Any = None
        self._reported_missing: int | None = None
        self.reloads = 0
        self.listening = asyncio.Event()

    # --- the publishing replica ---------------------------------------------------------------------------
    def announce(self, version_id: int) -> None:
        """``KnowledgeService.live_listeners`` entry: tell the other replicas ``version_id`` is live."""
        announce_live(self._sync, self.channel, version_id)

    # --- every replica ------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks and not all(t.done() for t in self._tasks):
            return
        loop = asyncio.get_running_loop()
        self._client = self._client_factory()
        self.listening = asyncio.Event()
        self._tasks = [loop.create_task(self._listen(), name="kb-follow-listen")]
        if self.poll_s > 0:
            self._tasks.append(loop.create_task(self._poll(), name="kb-follow-poll"))

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        await stop_tasks(tasks)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def catch_up(self, expected: int | None = None) -> bool:
        """Load the version ``LIVE`` names if it is not the one served; True when one was loaded."""
        try:
            changed = bool(await asyncio.to_thread(self.knowledge.reload_if_changed))
        except Exception:
            # a broken or half-copied version must not stop answering from the one already loaded
            log.exception("could not load the live index version")
            return False
        if changed:
            self.reloads += 1
            log.info("now serving knowledge index version %s", self.knowledge.live_version)
        if expected is not None and self.knowledge.live_version != expected:
            self._report_missing(expected)
        return changed

    def _report_missing(self, expected: int) -> None:
        directory = Path(self.knowledge.index_root) / str(expected)
        # present: a later publish or rollback has already moved LIVE on; nothing is wrong
        if self._reported_missing == expected or directory.is_dir():
            return
        self._reported_missing = expected
        log.warning(
            "another replica made index version %s live but %s is not on this replica's disk; the index "
            "directory must be shared by every replica (docs/deployment.md). Still serving version %s; "
            "retrying every %.0f s.",
            expected, directory, self.knowledge.live_version, self.poll_s,
        )

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            await self.catch_up()

    async def _listen(self) -> None:
        backoff = Backoff(cap=self._backoff_cap)
        lost = False
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                self.listening.set()
                backoff.reset()
                confirmed = False
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message.get("type") == "subscribe":
                        # a second confirmation: the client reconnected by itself after a short drop
                        if lost or confirmed:
                            log.info("kb follower: Redis is back")
                            await self.catch_up()  # a publish may have happened while we were deaf
                        confirmed, lost = True, False
                        continue
                    if message.get("type") != "message":
                        continue
                    try:
                        version = int(json.loads(message.get("data"))["version"])
                    except (TypeError, ValueError, KeyError):
                        log.warning("kb follower: ignoring a malformed message")
                        continue
                    await self.catch_up(version)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if not lost:
                    log.warning("kb follower: lost Redis (%s); reconnecting, polling meanwhile", type(err).__name__)
                lost = True
                self.listening.clear()
                await backoff.wait()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
