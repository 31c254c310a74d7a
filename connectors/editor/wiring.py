"""Mounting the content editor on a server runtime (called by ``connectors.server.build_runtime``)."""

from __future__ import annotations

from typing import Any

from assistant.handoff.config import HandoffConfig
from connectors.editor.router import make_editor_router


def attach_editor(runtime: Any) -> None:
    """Add the editor page and its login to ``runtime.routers``; needs the accounts the console opened."""
    if runtime.accounts is None:
        raise RuntimeError("the editor needs staff accounts: attach the console first")
    config: HandoffConfig = getattr(runtime.config, "handoff", None) or HandoffConfig()
    # the console's login rate limiting, when the runtime has it, guards this login too
    throttle = getattr(runtime, "login_throttle", None) or getattr(runtime.accounts, "throttle", None)
    runtime.routers.append(
        make_editor_router(runtime.accounts, cookie_secure=config.console.cookie_secure, throttle=throttle)
    )
