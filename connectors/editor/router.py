"""The content editor's page and its login: ``/editor``, ``/editor/static/*`` and ``/api/editor/*``.

The page is static (plain HTML, CSS and JS served from this package; nothing from a CDN) and talks to the
knowledge-base API under ``/api/kb`` and to the dashboard. Like the console, it has its own login call, for the
roles that may edit content (editors and admins): the rate limits, the audit entries and the session cookie are the
ones every staff page shares (``Auth.login``, ``set_session_cookie``: HttpOnly, SameSite=Strict, path ``/``).
Changes carry the session's CSRF token in ``X-CSRF-Token``.
(No ``from __future__ import annotations``: FastAPI must see the local ``Annotated`` aliases as objects.)
"""

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from assistant.accounts import (
    EDITOR_ROLES,
    Accounts,
    Auth,
    Login,
    clear_session_cookie,
    client_address,
    set_session_cookie,
)
from assistant.errors import ApiError

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {
    "editor.js": "text/javascript; charset=utf-8",
    "editor.css": "text/css; charset=utf-8",
}
# the page runs only its own script; the Markdown preview is server-sanitized HTML, and even so no inline script,
# no plugin and no foreign image (a tracking pixel in a document) can run or load in it
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
}


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=256)


def make_editor_router(accounts: Accounts, *, cookie_secure: bool = True) -> APIRouter:
    auth = Auth(accounts)
    Editor = Annotated[Login, Depends(auth.require_role(*EDITOR_ROLES))]
    router = APIRouter(tags=["editor"])

    @router.get("/editor", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "editor.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @router.get("/editor/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in STATIC_TYPES:
            raise ApiError(404, "not_found", "找不到请求的资源", "Not found")
        return FileResponse(STATIC / name, media_type=STATIC_TYPES[name], headers={"Cache-Control": "no-cache"})

    @router.post("/api/editor/login")
    async def login(body: Credentials, request: Request) -> Response:
        # rate limited per username and address and audited by Auth.login; editors and admins only
        grant = await asyncio.to_thread(auth.login, body.username, body.password, client_address(request),
                                        roles=EDITOR_ROLES, where="editor")
        # no token in the body: the page holds the session only as an HttpOnly cookie, out of any script's reach
        response = JSONResponse({"user": grant.user.to_json(), "csrf": grant.csrf, "expires_at": grant.expires_at})
        set_session_cookie(response, grant, secure=cookie_secure, now=accounts.clock())
        return response

    @router.post("/api/editor/logout")
    async def logout(who: Editor, request: Request) -> Response:
        auth.logout(who, client_address(request), where="editor")
        response = JSONResponse({"ok": True})
        clear_session_cookie(response)
        return response

    @router.get("/api/editor/me")
    async def me(who: Editor) -> dict[str, Any]:
        return {"user": who.user.to_json(), "csrf": who.csrf}

    return router
