"""Pushes to a citizen's socket on another replica: two ``CitizenBridge`` instances on real Redis are two replicas,
each with a channel that records what reached "its" sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from assistant.agent import BotReply, Button
from assistant.config import RedisConfig
from assistant.redis_client import redis_client
from connectors.console.delivery import ChannelDelivery
from connectors.redis_bridge import CitizenBridge


class SocketsHere:
    """This replica's web-chat sockets: which sessions have one open, what was sent to them."""

    def __init__(self) -> None:
        self.open: set[str] = set()
        self.received: list[tuple[str, list[BotReply]]] = []
        self.arrived = asyncio.Event()

    async def send(self, recipient_id: str, replies: Sequence[Any]) -> bool:
        if recipient_id not in self.open:
            return False
        self.received.append((recipient_id, list(replies)))
        self.arrived.set()
        return True


def replica(settings: RedisConfig) -> tuple[CitizenBridge, SocketsHere, ChannelDelivery]:
    bridge = CitizenBridge(lambda: redis_client(settings), settings.prefix)
    sockets = SocketsHere()
    bridge.channels["webchat"] = sockets
    return bridge, sockets, ChannelDelivery({"webchat": sockets}, bridge=bridge)


def connect(bridge: CitizenBridge, sockets: SocketsHere, session: str, held: bool = True) -> None:
    (sockets.open.add if held else sockets.open.discard)(session)
    bridge.socket_changed("webchat", session, held)


async def settle(bridge: CitizenBridge) -> None:
    await asyncio.wait_for(bridge.listening.wait(), 3)
    await asyncio.sleep(0.2)  # the (un)subscribe command reaches Redis


def test_a_push_from_one_replica_reaches_the_socket_on_the_other(redis_settings: RedisConfig) -> None:
    async def body() -> None:
        (a, a_sockets, a_deliver), (b, b_sockets, _) = replica(redis_settings), replica(redis_settings)
        await a.start()
        connect(b, b_sockets, "citizen-1")
        await settle(b)
        reply = BotReply("您好，我是王芳", buttons=(Button("好的", "/affirm"),), custom={"handoff": {"from": "agent"}})
        result = await a_deliver("webchat", "citizen-1", [reply])
        assert result.delivered
        await asyncio.wait_for(b_sockets.arrived.wait(), 3)
        assert b_sockets.received == [("citizen-1", [reply])]
        assert a_sockets.received == []

        # nobody holds a socket of this citizen: not delivered (the message stays in the history)
        assert not (await a_deliver("webchat", "citizen-2", [BotReply("在吗")])).delivered

        # the citizen closes the page: pushes are no longer routed to b
        connect(b, b_sockets, "citizen-1", held=False)
        await settle(b)
        assert await a.push("webchat", "citizen-1", [BotReply("还在吗")]) == 0
        await a.aclose()
        await b.aclose()

    asyncio.run(body())


def test_a_citizen_with_pages_on_both_replicas_gets_each_push_once_per_page(redis_settings: RedisConfig) -> None:
    async def body() -> None:
        (a, a_sockets, a_deliver), (b, b_sockets, _) = replica(redis_settings), replica(redis_settings)
        connect(a, a_sockets, "citizen-3")
        connect(b, b_sockets, "citizen-3")
        await settle(a)
        await settle(b)
        # Redis counts a's own subscription; push() reports only the other replicas
        assert await a.push("webchat", "citizen-3", [BotReply("一")]) == 1
        await asyncio.wait_for(b_sockets.arrived.wait(), 3)
        assert (await a_deliver("webchat", "citizen-3", [BotReply("二")])).delivered
        await asyncio.sleep(0.3)
        assert [r[0].text for _, r in a_sockets.received] == ["二"]  # a's own publish is not echoed back
        assert [r[0].text for _, r in b_sockets.received] == ["一", "二"]
        await a.aclose()
        await b.aclose()

    asyncio.run(body())
