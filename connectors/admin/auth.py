"""One login for every staff page: ``/api/auth/login|logout|me``.

The console keeps its own ``/console/api/login`` (agents and admins only); this one lets any role in, sets the same
session cookie (path ``/``), and tells the page which staff pages the role may open. Rate limiting and audit are
``Auth.login``'s; the routes are ``connectors.staff_session``'s, as the console's and the editor's are.
"""

from typing import Any

from fastapi import APIRouter

from assistant.accounts import ADMIN_ROLES, CONSOLE_ROLES, EDITOR_ROLES, ROLES, Accounts, Auth, User
from connectors.staff_session import StaffSession, add_session_routes

# the staff pages and who may open them
PAGES: dict[str, tuple[str, ...]] = {"/console": CONSOLE_ROLES, "/editor": EDITOR_ROLES, "/admin": ADMIN_ROLES}
PUBLIC_PATHS = frozenset({"/api/auth/login"})


def pages_for(user: User) -> list[str]:
    return [page for page, roles in PAGES.items() if user.role in roles]


def _pages(user: User) -> dict[str, Any]:
    return {"pages": pages_for(user)}


def make_auth_router(accounts: Accounts, *, cookie_secure: bool = True) -> APIRouter:
    router = APIRouter(tags=["auth"])
    # any role; the answers name the staff pages the role may open, and the token is there for API clients
    session = StaffSession("/api/auth", ROLES, "auth", token_in_body=True, cookie_secure=cookie_secure,
                           login_extra=_pages, me_extra=_pages)
    add_session_routes(router, Auth(accounts), session)
    return router
