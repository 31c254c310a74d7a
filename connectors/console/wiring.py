"""Adding human handoff and the staff console to a server runtime (called by ``connectors.server``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.accounts import Accounts
from assistant.config import RedisConfig
from assistant.handoff.bus import Bus, RedisBus
from assistant.handoff.config import HandoffConfig
from assistant.handoff.wiring import install_handoff
from assistant.redis_client import key, redis_client
from connectors.console.delivery import ChannelDelivery
from connectors.console.router import make_console_router


def console_bus(settings: RedisConfig | None) -> Bus:
    """Console updates across replicas through Redis when ``redis.url`` is set; in process otherwise."""
    if settings is None or not settings.url:
        return Bus()
    return RedisBus(lambda: redis_client(settings), key(settings, "console"))


def attach_console(runtime: Any) -> None:
    """Install handoff on ``runtime.agent`` and mount the console router; a second call changes nothing."""
    if getattr(runtime, "handoff", None) is not None:
        return
    config: HandoffConfig = getattr(runtime.config, "handoff", None) or HandoffConfig()
    delivery = ChannelDelivery()
    service = install_handoff(runtime.agent, config, runtime.database_url, deliver=delivery,
                              bus=console_bus(getattr(runtime.config, "redis", None)))
    accounts = Accounts(runtime.database_url, session_hours=config.console.session_hours,
                        login_limits=getattr(runtime.config, "login_limits", None))
    runtime.handoff = service
    runtime.accounts = accounts
    runtime.delivery = delivery
    runtime.routers.append(make_console_router(service, accounts, config))


def bind_channels(runtime: Any, channels: Mapping[str, Any]) -> None:
    """Staff replies go out through the app's channels, which exist only once the app is built."""
    delivery = getattr(runtime, "delivery", None)
    if delivery is not None:
        delivery.channels.update(channels)
