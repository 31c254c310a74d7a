"""Live updates for staff consoles: an in-process publish/subscribe hub.

Each console WebSocket is one subscriber with its own bounded queue; a slow tab loses its oldest updates (and is
told to reload) instead of slowing the conversation down. Several replicas would put Redis pub/sub behind the same
``publish``/``subscribe`` seam.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

Update = dict[str, Any]


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
            self.queue.put_nowait({"type": "resync"})

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
