"""The seam between the engine and the edges.

A channel is found by name (``channels:`` in config.yml) through the ``gov_assistant.channels`` entry-point group,
so the engine never imports a connector and a new channel is one new module plus one line in pyproject.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol

from fastapi import APIRouter


class Channel(Protocol):
    name: str

    def router(self) -> APIRouter:
        """The routes this channel receives messages on."""
        ...

    async def send(self, recipient_id: str, replies: Sequence[Any]) -> bool:
        """Push replies outside a request (e.g. a staff member's answer). False when it could not be delivered."""
        ...


ChannelFactory = Callable[[Any, dict[str, Any]], Channel]  # (runtime, settings) -> Channel


class UnknownChannelError(LookupError):
    pass


def channel_factories() -> dict[str, ChannelFactory]:
    return {ep.name: ep.load() for ep in entry_points(group="gov_assistant.channels")}


def build_channels(runtime: Any, configured: dict[str, dict[str, Any] | None]) -> list[Channel]:
    factories = channel_factories()
    channels = []
    for name, settings in configured.items():
        if name not in factories:
            known = ", ".join(sorted(factories)) or "none"
            raise UnknownChannelError(f"channels.{name}: unknown channel / 未知渠道 (known: {known})")
        channels.append(factories[name](runtime, dict(settings or {})))
    return channels
