"""The content editor's page and its login: ``/editor``, ``/editor/static/*`` and ``/api/editor/*``.

The page is static (plain HTML, CSS and JS served from this package; nothing from a CDN) and talks to the
knowledge-base API under ``/api/kb``. Its login opens a session like the console's, for the roles that may edit
content, and sets the session cookie on ``/api`` — where the knowledge API and the dashboard are — rather than on
``/console``, so the browser sends it to them; changes carry the session's CSRF token in ``X-CSRF-Token``.
(No ``from __future__ import annotations``: FastAPI must see the local ``Annotated`` aliases as objects.)
"""

import asyncio
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from assistant.accounts import SESSION_COOKIE, Accounts, Auth, Login, client_address
from assistant.errors import ApiError

STATIC = Path(__file__).parent / "static"
EDITOR_ROLES = ("admin", "editor")
COOKIE_PATH = "/api"
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


class Lock(Protocol):
    retry_after_s: int


class Throttle(Protocol):
    """Login rate limiting (``assistant.login_limits.LoginThrottle``)."""

    def check(self, username: str, source: str) -> Lock | None: ...

    def record(self, username: str, source: str, ok: bool) -> None: ...


def make_editor_router(
    accounts: Accounts, *, cookie_secure: bool = True, throttle: Throttle | None = None
) -> APIRouter:
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
        source = client_address(request)
        if throttle is not None:
            lock = await asyncio.to_thread(throttle.check, body.username, source)
            if lock is not None:
                raise ApiError(429, "login_locked", "登录失败次数过多，请稍后再试", "Too many failed logins; try later",
                               {"Retry-After": str(lock.retry_after_s)})
        user = await asyncio.to_thread(accounts.authenticate, body.username, body.password)
        ok = user is not None and user.role in EDITOR_ROLES
        if throttle is not None:
            await asyncio.to_thread(throttle.record, body.username, source, ok)
        if user is None or not ok:
            accounts.audit(body.username, "login.failed", "editor", source, {})
            raise ApiError(401, "bad_credentials", "用户名或密码错误", "Wrong username or password")
        token, csrf, expires = accounts.open_session(user)
        accounts.audit(user.username, "login", "editor", source, {})
        # no token in the body: the page has it only as an HttpOnly cookie, out of reach of any script
        response = JSONResponse({"user": user.to_json(), "csrf": csrf, "expires_at": expires})
        response.set_cookie(SESSION_COOKIE, token, max_age=int(expires - accounts.clock()), httponly=True,
                            secure=cookie_secure, samesite="strict", path=COOKIE_PATH)
        return response

    @router.post("/api/editor/logout")
    async def logout(who: Editor) -> Response:
        accounts.close_session(who.token_hash)
        response = JSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
        return response

    @router.get("/api/editor/me")
    async def me(who: Editor) -> dict[str, Any]:
        return {"user": who.user.to_json(), "csrf": who.csrf}

    return router
