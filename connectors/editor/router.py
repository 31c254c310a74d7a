"""The content editor's page and its login: ``/editor``, ``/editor/static/*`` and ``/api/editor/*``.

The page is static (plain HTML, CSS and JS served from this package; nothing from a CDN) and talks to the
knowledge-base API under ``/api/kb`` and to the dashboard. Like the console, it has its own login call, for the
roles that may edit content (editors and admins): the rate limits, the audit entries and the session cookie are the
ones every staff page shares (``connectors.staff_session``: ``Auth.login``, ``set_session_cookie``: HttpOnly,
SameSite=Strict, path ``/``). Changes carry the session's CSRF token in ``X-CSRF-Token``.
"""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from assistant.accounts import EDITOR_ROLES, Accounts, Auth
from assistant.errors import ApiError
from connectors.staff_session import StaffSession, add_session_routes

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


def make_editor_router(accounts: Accounts, *, cookie_secure: bool = True) -> APIRouter:
    router = APIRouter(tags=["editor"])

    @router.get("/editor", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "editor.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    @router.get("/editor/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in STATIC_TYPES:
            raise ApiError(404, "not_found", "找不到请求的资源", "Not found")
        return FileResponse(STATIC / name, media_type=STATIC_TYPES[name], headers={"Cache-Control": "no-cache"})

    # no token in the body: the page holds the session only as an HttpOnly cookie, out of any script's reach
    session = StaffSession("/api/editor", EDITOR_ROLES, "editor", token_in_body=False, cookie_secure=cookie_secure)
    add_session_routes(router, Auth(accounts), session)
    return router
