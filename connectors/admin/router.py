"""The admin page and API: staff accounts and the audit log, admins only.

``/admin`` (the page and its static files) answers anyone — it holds no data and shows a login form; every
``/api/admin/*`` route depends on ``Auth.require_role("admin")`` at the router level, so a new route cannot forget
it. Account changes are audited by ``Accounts`` with the admin as actor; there is no route that changes or deletes
audit entries. (No ``from __future__ import annotations``: FastAPI must see the local ``Annotated`` aliases.)
"""

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from assistant.accounts import (
    ADMIN_ROLES,
    ROLES,
    USERNAME_PATTERN,
    AccountError,
    Accounts,
    Auth,
    Login,
    User,
    client_address,
)
from assistant.audit import to_epoch
from assistant.errors import ApiError

STATIC = Path(__file__).parent / "static"
PUBLIC_PATHS = frozenset({"/admin", "/admin/static/{name}"})
Role = Literal["agent", "editor", "admin"]
assert set(Role.__args__) == set(ROLES)  # type: ignore[attr-defined]
_STATUS = {"no_such_user": 404, "username_taken": 409, "last_admin": 409}
PAGE_HEADERS = {
    "Cache-Control": "no-store", "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(..., pattern=USERNAME_PATTERN)
    password: str = Field(..., min_length=8, max_length=256)
    role: Role
    display_name: str | None = Field(None, max_length=64)
    team: str | None = Field(None, max_length=40)


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(..., min_length=8, max_length=256)


class NewRole(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


def _user_json(user: User) -> dict[str, Any]:
    return {**user.to_json(), "active": user.active, "created_at": user.created_at}


def _api_error(err: AccountError) -> ApiError:
    return ApiError(_STATUS.get(err.code, 422), err.code, err.message_zh, err.message_en)


def _not_yourself(who: Login, username: str) -> None:
    # an admin locking themselves out is always a mistake; another admin can do it if really meant
    if who.user.username == username:
        raise ApiError(409, "not_yourself", "不能停用或降级自己的账号", "You cannot disable or demote your own account")


def make_admin_router(accounts: Accounts) -> APIRouter:
    auth = Auth(accounts)
    admin = auth.require_role(*ADMIN_ROLES)
    Admin = Annotated[Login, Depends(admin)]

    public = APIRouter(tags=["admin"])
    private = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(admin)])

    @public.get("/admin", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "admin.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @public.get("/admin/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        types = {"admin.js": "text/javascript; charset=utf-8", "admin.css": "text/css; charset=utf-8"}
        if name not in types:
            raise ApiError(404, "not_found", "找不到请求的资源", "Not found")
        return FileResponse(STATIC / name, media_type=types[name], headers={"Cache-Control": "no-cache"})

    @private.get("/users")
    def list_users(who: Admin) -> dict[str, Any]:
        return {"users": [_user_json(u) for u in accounts.users()], "roles": list(ROLES)}

    @private.post("/users", status_code=201)
    def create_user(body: NewUser, who: Admin, request: Request) -> dict[str, Any]:
        try:
            user = accounts.create_user(body.username, body.password, body.role, body.display_name, body.team or None,
                                        by=who.user.username, source=client_address(request))
        except AccountError as err:
            raise _api_error(err) from None
        return {"user": _user_json(user)}

    @private.post("/users/{username}/disable")
    def disable(username: str, who: Admin, request: Request) -> dict[str, Any]:
        _not_yourself(who, username)
        try:
            user = accounts.set_active(username, False, by=who.user.username, source=client_address(request))
        except AccountError as err:
            raise _api_error(err) from None
        return {"user": _user_json(user)}

    @private.post("/users/{username}/enable")
    def enable(username: str, who: Admin, request: Request) -> dict[str, Any]:
        try:
            user = accounts.set_active(username, True, by=who.user.username, source=client_address(request))
        except AccountError as err:
            raise _api_error(err) from None
        return {"user": _user_json(user)}

    @private.post("/users/{username}/password")
    def reset_password(username: str, body: NewPassword, who: Admin, request: Request) -> dict[str, Any]:
        try:
            accounts.reset_password(username, body.password, by=who.user.username, source=client_address(request))
        except AccountError as err:
            raise _api_error(err) from None
        return {"ok": True}

    @private.post("/users/{username}/role")
    def change_role(username: str, body: NewRole, who: Admin, request: Request) -> dict[str, Any]:
        if body.role != "admin":
            _not_yourself(who, username)
        try:
            user = accounts.set_role(username, body.role, by=who.user.username, source=client_address(request))
        except AccountError as err:
            raise _api_error(err) from None
        return {"user": _user_json(user)}

    @private.get("/audit")
    def audit_log(
        who: Admin,
        actor: Annotated[str | None, Query(max_length=64)] = None,
        action: Annotated[str | None, Query(max_length=64)] = None,
        since: datetime | None = None,
        until: Annotated[datetime | None, Query(description="exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        page = accounts.audit_log.search(actor=actor or None, action=action or None, since=to_epoch(since),
                                         until=to_epoch(until), limit=limit, offset=offset)
        return {"entries": page.entries, "total": page.total, "limit": page.limit, "offset": page.offset}

    router = APIRouter()
    router.include_router(public)
    router.include_router(private)
    return router
