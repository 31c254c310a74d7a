"""One login for every staff page: ``/api/auth/login|logout|me``.

The console keeps its own ``/console/api/login`` (agents and admins only); this one lets any role in, sets the same
session cookie (path ``/``), and tells the page which staff pages the role may open. Rate limiting and audit are
``Auth.login``'s. (No ``from __future__ import annotations``: FastAPI must see the local ``Annotated`` aliases.)
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from assistant.accounts import (
    ADMIN_ROLES,
    CONSOLE_ROLES,
    EDITOR_ROLES,
    ROLES,
    Accounts,
    Auth,
    Login,
    User,
    clear_session_cookie,
    client_address,
    set_session_cookie,
)

# the staff pages and who may open them
PAGES: dict[str, tuple[str, ...]] = {"/console": CONSOLE_ROLES, "/editor": EDITOR_ROLES, "/admin": ADMIN_ROLES}
PUBLIC_PATHS = frozenset({"/api/auth/login"})


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=256)


def pages_for(user: User) -> list[str]:
    return [page for page, roles in PAGES.items() if user.role in roles]


def make_auth_router(accounts: Accounts, *, cookie_secure: bool = True) -> APIRouter:
    auth = Auth(accounts)
    Anyone = Annotated[Login, Depends(auth.require_role(*ROLES))]
    router = APIRouter(tags=["auth"])

    @router.post("/api/auth/login")
    async def login(body: Credentials, request: Request) -> Response:
        grant = await asyncio.to_thread(auth.login, body.username, body.password, client_address(request),
                                        where="auth")
        response = JSONResponse({"user": grant.user.to_json(), "csrf": grant.csrf, "token": grant.token,
                                 "expires_at": grant.expires_at, "pages": pages_for(grant.user)})
        set_session_cookie(response, grant, secure=cookie_secure, now=accounts.clock())
        return response

    @router.post("/api/auth/logout")
    async def logout(who: Anyone, request: Request) -> Response:
        auth.logout(who, client_address(request), where="auth")
        response = JSONResponse({"ok": True})
        clear_session_cookie(response)
        return response

    @router.get("/api/auth/me")
    async def me(who: Anyone) -> dict[str, Any]:
        return {"user": who.user.to_json(), "csrf": who.csrf, "pages": pages_for(who.user)}

    return router
