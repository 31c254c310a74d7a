"""The login, logout and "who am I" calls every staff page has: ``{prefix}/login``, ``{prefix}/logout``,
``{prefix}/me``.

The console (``/console/api``), the content editor (``/api/editor``) and the shared staff login (``/api/auth``)
differ only in who may log in, what the audit log names the place (``where``), whether the session token is in the
login answer, and what ``me`` (and, for the shared login, ``login``) add; ``add_session_routes`` takes those and
adds the three routes. Rate limits and audit entries are ``Auth.login``'s and ``Auth.logout``'s; the session
cookie is the one every staff page shares (``set_session_cookie``: HttpOnly, SameSite=Strict, path ``/``).
(No ``from __future__ import annotations``: FastAPI must see the local ``Annotated`` alias as an object.)
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from assistant.accounts import (
    Auth,
    Login,
    User,
    clear_session_cookie,
    client_address,
    set_session_cookie,
)

Extra = Callable[[User], dict[str, Any]]
RoleCheck = Callable[[Request], Login]


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=256)


@dataclass(frozen=True)
class StaffSession:
    """How one staff page logs in."""

    prefix: str  # the routes are ``{prefix}/login``, ``{prefix}/logout`` and ``{prefix}/me``
    roles: tuple[str, ...]  # who may log in here; a right password of another role is refused like a wrong one
    where: str  # the audit entries' target: which page was logged into or out of
    # API clients want the token for ``Authorization: Bearer``; a page that keeps the session only in its HttpOnly
    # cookie does not, and then leaving it out keeps it out of any script's reach
    token_in_body: bool
    cookie_secure: bool
    login_extra: Extra | None = None  # more fields for the login answer
    me_extra: Extra | None = None  # more fields for ``me``


def _extra(fields: Extra | None, user: User) -> dict[str, Any]:
    return fields(user) if fields is not None else {}


def add_session_routes(public: APIRouter, auth: Auth, session: StaffSession, *, private: APIRouter | None = None,
                       role_check: RoleCheck | None = None) -> None:
    """Add the login call to ``public`` and logout and ``me`` to ``private`` (``public`` when None).

    ``role_check``: the ``auth.require_role(...)`` dependency ``private`` already runs for every route, if any;
    passing the same one lets FastAPI run it once per request (one session lookup) rather than twice."""
    Staff = Annotated[Login, Depends(role_check or auth.require_role(*session.roles))]
    protected = public if private is None else private
    clock = auth.accounts.clock

    @public.post(f"{session.prefix}/login")
    async def login(body: Credentials, request: Request) -> Response:
        # rate limited per username and address and audited (login.success / login.failure) by Auth.login;
        # argon2 is slow on purpose, so it runs in a worker thread
        grant = await asyncio.to_thread(auth.login, body.username, body.password, client_address(request),
                                        roles=session.roles, where=session.where)
        answer: dict[str, Any] = {"user": grant.user.to_json(), "csrf": grant.csrf}
        if session.token_in_body:
            answer["token"] = grant.token
        answer["expires_at"] = grant.expires_at
        response = JSONResponse({**answer, **_extra(session.login_extra, grant.user)})
        set_session_cookie(response, grant, secure=session.cookie_secure, now=clock())
        return response

    @protected.post(f"{session.prefix}/logout")
    async def logout(who: Staff, request: Request) -> Response:
        auth.logout(who, client_address(request), where=session.where)
        response = JSONResponse({"ok": True})
        clear_session_cookie(response)
        return response

    @protected.get(f"{session.prefix}/me")
    async def me(who: Staff) -> dict[str, Any]:
        return {"user": who.user.to_json(), "csrf": who.csrf, **_extra(session.me_extra, who.user)}
