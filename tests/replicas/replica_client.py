"""A citizen's client in front of several replicas, as a load balancer without sticky sessions would send it:
each message to the next live replica; a message whose replica died (connection refused or cut) or that was
refused with 503 is sent again, with the same message id, to a live one."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from replicas import Replica

from assistant.events import ActionExecuted, UserUttered
from assistant.store import SQLTrackerStore
from connectors.backoffice_demo import RunningBackOffice

# short, so a replica killed while holding a conversation's lock blocks it briefly in the tests
LEASE_S = 3.0


@dataclass
class Cluster:
    replicas: list[Replica]
    database_url: str
    redis_prefix: str
    backoffice: RunningBackOffice


@dataclass
class Sent:
    conversation_id: str
    text: str
    message_id: str
    replies: list[str]
    seconds: float
    attempts: int


@dataclass
class Balancer:
    replicas: list[Replica]
    client: httpx.AsyncClient
    max_attempts: int = 30
    _next: Any = field(default_factory=itertools.count)
    # why messages were sent again: "transport" (the replica died with it) or the HTTP status
    reasons: Counter[str] = field(default_factory=Counter)

    def live(self) -> list[Replica]:
        # a load balancer's health check: a dead process gets no new requests
        return [r for r in self.replicas if r.process.poll() is None]

    async def send(self, conversation_id: str, text: str, message_id: str, replica: Replica | None = None) -> Sent:
        started = time.monotonic()
        target = replica
        for attempt in range(1, self.max_attempts + 1):
            live = self.live()
            if target is None or target not in live:
                target = live[next(self._next) % len(live)]
            try:
                r = await self.client.post(
                    f"{target.url}/webhooks/rest/webhook",
                    json={"sender": conversation_id, "message": text, "message_id": message_id},
                )
            except httpx.TransportError:
                # the replica died with the request: the same message again, elsewhere
                self.reasons["transport"] += 1
                target = None
                await asyncio.sleep(0.05 * attempt)
                continue
            if r.status_code in (502, 503, 504):
                self.reasons[str(r.status_code)] += 1
                target = None
                await asyncio.sleep(min(1.0, 0.1 * attempt))
                continue
            assert r.status_code == 200, f"{r.status_code}: {r.text[:500]}"
            replies = [m.get("text") or "" for m in r.json()]
            return Sent(conversation_id, text, message_id, replies, time.monotonic() - started, attempt)
        raise AssertionError(f"{conversation_id}: {text!r} not taken after {self.max_attempts} attempts")


def user_messages(store: SQLTrackerStore, conversation_id: str) -> list[tuple[str, str | None]]:
    return [(e.text or "", e.message_id) for e in store.load(conversation_id) if isinstance(e, UserUttered)]


def unfinished_turns(store: SQLTrackerStore, conversation_id: str) -> int:
    """User messages after which the engine never listened again (a turn cut off and not resumed)."""
    events = store.load(conversation_id)
    cut = 0
    open_turn = False
    for e in events:
        if isinstance(e, UserUttered):
            cut += open_turn
            open_turn = True
        elif isinstance(e, ActionExecuted) and e.action_name == "action_listen":
            open_turn = False
    return cut + open_turn


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0
