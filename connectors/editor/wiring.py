"""Mounting the content editor on a server runtime (called by ``connectors.server.build_runtime``)."""

from __future__ import annotations

from typing import Any

from assistant.handoff.config import HandoffConfig
from connectors.editor.router import make_editor_router


def attach_editor(runtime: Any) -> None:
    """Add the editor page and its login to ``runtime.routers``; needs the accounts the console opened."""
    if runtime.accounts is None:
        raise RuntimeError("the editor needs staff accounts: attach the console first")
    # the staff pages share one session cookie, and so its Secure setting (handoff.console.cookie_secure)
    config: HandoffConfig = getattr(runtime.config, "handoff", None) or HandoffConfig()
    runtime.routers.append(make_editor_router(runtime.accounts, cookie_secure=config.console.cookie_secure))
