"""Delivering staff messages through the channel a citizen came from.

Web chat pushes over its WebSocket (a citizen without an open page sees the message in the history later). With
several replicas the socket may be held by another one: the push also goes through ``bridge``
(``connectors.redis_bridge.CitizenBridge``), and the replica holding the socket sends it.
WeChat goes through the customer-service API directly, because the agent must hear about the 48-hour window:
``SendResult.outside_window`` becomes ``DeliveryResult.outside_window`` and the handoff service keeps the message
for the next time the citizen writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assistant.agent import BotReply
from assistant.handoff.service import DeliveryResult
from connectors.wechat_api import CustomerServiceClient


class ChannelDelivery:
    def __init__(self, channels: Mapping[str, Any] | None = None, bridge: Any = None) -> None:
        # filled by the composition root once the app has built its channels
        self.channels: dict[str, Any] = dict(channels or {})
        # cross-replica pushes (set when Redis is configured): the channels it knows reach sockets anywhere
        self.bridge = bridge

    async def __call__(self, channel: str, recipient_id: str, replies: Sequence[BotReply], *,
                       ephemeral: bool = False) -> DeliveryResult:
        target = self.channels.get(channel)
        if target is None:
            return DeliveryResult(False, reason="channel_not_configured")
        api = getattr(target, "api", None)
        if isinstance(api, CustomerServiceClient):
            if ephemeral:  # WeChat has no typing indicator or status line: nothing to show
                return DeliveryResult(False, reason="not_supported")
            from connectors.wechat import render_text

            content = render_text(replies)
            if not content:
                return DeliveryResult(True)
            result = await api.send_text(recipient_id.removeprefix("wechat:"), content)
            return DeliveryResult(result.delivered, result.outside_window, result.reason)
        delivered = bool(await target.send(recipient_id, replies))
        if self.bridge is not None and channel in self.bridge.channels:
            # the citizen may (also) have a page open on another replica
            delivered = await self.bridge.push(channel, recipient_id, replies) > 0 or delivered
        return DeliveryResult(delivered, reason="" if delivered else "offline")
