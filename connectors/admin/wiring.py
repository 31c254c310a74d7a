"""Adding the staff login, the admin page and the audit trail to a server (called by ``connectors.server``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from assistant.audit import AuditTrail
from connectors.admin.auth import make_auth_router
from connectors.admin.router import make_admin_router


def attach_admin(runtime: Any) -> None:
    """Mount ``/api/auth/*``, ``/admin`` and ``/api/admin/*`` over the runtime's accounts (``attach_console`` made
    them); a second call changes nothing."""
    if getattr(runtime, "admin_attached", False):
        return
    handoff = getattr(runtime.config, "handoff", None)
    secure = handoff.console.cookie_secure if handoff is not None else True
    runtime.routers.append(make_auth_router(runtime.accounts, cookie_secure=secure))
    runtime.routers.append(make_admin_router(runtime.accounts))
    runtime.admin_attached = True


def install_audit(app: FastAPI, runtime: Any) -> None:
    """Every successful privileged request of a logged-in user goes into the audit log (``assistant.audit``)."""
    app.add_middleware(AuditTrail, audit_log=runtime.accounts.audit_log)
