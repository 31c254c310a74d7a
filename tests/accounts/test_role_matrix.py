"""Every route of the server, walked unauthenticated and as each role, against one table of who may do what.

The walk covers every operation of ``app.openapi()`` plus the routes the schema leaves out (staff pages and their
static files, WebSockets, mounted apps). A route the table does not classify fails the test: a new route must
declare its roles here. For a protected route: no login -> 401, a role not allowed -> 403, an allowed role -> neither
(the request gets as far as the handler). A public route answers every caller alike. Nothing answers 5xx.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from accounts_helpers import role_headers
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocketDisconnect

PUBLIC = "public"
ROLES = ("agent", "editor", "admin")
CONSOLE = frozenset({"agent", "admin"})
EDITOR = frozenset({"editor", "admin"})
ADMIN = frozenset({"admin"})
STAFF = frozenset(ROLES)

# Who may use a route. A key ending in "/" is a prefix, any other key is one exact route template; the longest key
# that matches wins. Citizens' channels, health checks, the staff pages (they hold no data and show a login form)
# and the login calls are public.
ACCESS: dict[str, frozenset[str] | str] = {
    # citizens and operations
    "/": PUBLIC,  # the webchat demo page (exact)
    "/healthz": PUBLIC,
    "/readyz": PUBLIC,
    "/webchat/": PUBLIC,  # messages, history, widget, feedback, ws
    "/webhooks/": PUBLIC,  # REST and WeChat webhooks (WeChat checks its own signature)
    "/model/parse": PUBLIC,
    "/socket.io/": PUBLIC,  # the rasa-webchat socket.io channel (a mounted app)
    "/docs": PUBLIC,
    "/docs/oauth2-redirect": PUBLIC,
    "/redoc": PUBLIC,
    "/openapi.json": PUBLIC,
    # the staff login shared by every staff page
    "/api/auth/login": PUBLIC,
    "/api/auth/": STAFF,
    # the console: agents and admins; revealing personal data and the console's audit view: admins
    "/console": PUBLIC,
    "/console/static/": PUBLIC,
    "/console/api/login": PUBLIC,
    "/console/api/": CONSOLE,
    "/console/api/conversations/{cid}/reveal": ADMIN,
    "/console/api/audit": ADMIN,
    "/console/ws": CONSOLE,
    # the content editor, the knowledge API and the dashboard: editors and admins
    "/editor": PUBLIC,
    "/editor/static/": PUBLIC,
    "/api/editor/login": PUBLIC,
    "/api/editor/": EDITOR,
    "/api/kb/": EDITOR,
    "/api/dashboard": EDITOR,
    "/api/dashboard/": EDITOR,
    # administration: admins
    "/admin": PUBLIC,
    "/admin/static/": PUBLIC,
    "/api/admin/": ADMIN,
}


def classify(path: str) -> frozenset[str] | str | None:
    matching = [k for k in ACCESS if path == k or (k.endswith("/") and k != "/" and path.startswith(k))]
    return ACCESS[max(matching, key=len)] if matching else None


def leaves(routes: list[Any]) -> list[Any]:
    """Every route, looking inside included routers (FastAPI keeps them nested)."""
    out: list[Any] = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            prefix = getattr(getattr(r, "include_context", None), "prefix", "") or ""
            out += [_Prefixed(prefix, x) if prefix else x for x in leaves(inner.routes)]
        else:
            out.append(r)
    return out


class _Prefixed:
    """A route of a router included with a prefix, seen with its full path."""

    def __init__(self, prefix: str, route: Any) -> None:
        self.route, self.path = route, prefix + route.path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.route, name)


def concrete(path: str, params: dict[str, str]) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]+)?\}", lambda m: params.get(m.group(1), "nosuchthing0"), path)


def _dummy(schema: dict[str, Any]) -> str:
    return "999999" if schema.get("type") == "integer" else "nosuchthing0"


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, str], bool]]:
    """(method, template, path parameter values, JSON body?) of every operation in the schema and every HTTP
    route left out of it."""
    ops: list[tuple[str, str, dict[str, str], bool]] = []
    seen: set[tuple[str, str]] = set()
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            params = {p["name"]: _dummy(p.get("schema", {})) for p in op.get("parameters", []) if p["in"] == "path"}
            content = (op.get("requestBody") or {}).get("content", {})
            ops.append((method.upper(), path, params, "application/json" in content))
            seen.add((method.upper(), path))
    for route in leaves(app.routes):
        inner = getattr(route, "route", route)
        if isinstance(inner, Mount):
            # a mounted app (socket.io): its own protocol, walked by its root
            ops.append(("GET", route.path.rstrip("/") + "/", {}, False))
            continue
        if isinstance(inner, (APIWebSocketRoute, WebSocketRoute)) or not isinstance(inner, (APIRoute, Route)):
            continue
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            if (method, route.path) in seen:
                continue
            ints = {name for name, conv in (route.param_convertors or {}).items() if type(conv).__name__ == "IntegerConvertor"}
            params = {name: ("999999" if name in ints else "nosuchthing0") for name in (route.param_convertors or {})}
            ops.append((method, route.path, params, method in {"POST", "PUT", "PATCH"}))
            seen.add((method, route.path))
    return ops


def test_every_route_is_classified(app: FastAPI) -> None:
    paths = [path for _m, path, _p, _b in operations(app)]
    paths += [r.path for r in leaves(app.routes) if isinstance(getattr(r, "route", r), (APIWebSocketRoute, WebSocketRoute))]
    unclassified = sorted({p for p in paths if classify(p) is None})
    assert not unclassified, f"routes with no entry in ACCESS (declare who may use them): {unclassified}"
    # the table is not stale either: every key still names something the app serves
    stale = [k for k in ACCESS if not any(p == k or (k.endswith("/") and p.startswith(k)) for p in paths)]
    allowed_stale = {"/api/dashboard/", "/docs/oauth2-redirect", "/redoc", "/editor", "/editor/static/",
                     "/api/editor/login", "/api/editor/", "/api/dashboard"}  # optional: other parts may add them
    assert set(stale) <= allowed_stale, stale


def test_every_route_answers_each_role_as_the_table_says(client: TestClient, app: FastAPI, runtime: Any) -> None:
    ops = operations(app)
    assert len(ops) >= 40, ops  # walked from the app, not written by hand
    walked = {(m, t) for m, t, _p, _b in ops}
    assert {("POST", "/api/kb/publish"), ("POST", "/console/api/conversations/{cid}/reveal"), ("GET", "/admin"),
            ("POST", "/api/admin/users/{username}/role"), ("GET", "/console"), ("POST", "/webchat/messages"),
            ("GET", "/socket.io/"), ("POST", "/api/auth/logout")} <= walked
    problems: list[str] = []
    counted = {"public": 0, "protected": 0}
    for method, template, params, json_body in ops:
        rule = classify(template)
        assert rule is not None, template
        url = concrete(template, params)
        got: dict[str, int] = {}
        bodies: dict[str, dict[str, Any]] = {}
        for who in ("anonymous", *ROLES):
            headers = {} if who == "anonymous" else role_headers(runtime, who)  # a fresh session each time
            r = client.request(method, url, headers=headers, json={} if json_body else None)
            got[who] = r.status_code
            try:
                bodies[who] = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            except ValueError:
                bodies[who] = {}
        where = f"{method} {template} -> {got}"
        if any(s >= 500 for s in got.values()):
            problems.append(f"5xx: {where}")
        if rule == PUBLIC:
            counted["public"] += 1
            if len(set(got.values())) != 1:
                problems.append(f"public route answers callers differently: {where}")
            continue
        counted["protected"] += 1
        assert isinstance(rule, frozenset)
        if got["anonymous"] != 401 or bodies["anonymous"].get("code") != "unauthorized":
            problems.append(f"anonymous not refused with 401: {where}")
        for role in ROLES:
            if role in rule and got[role] in (401, 403):
                problems.append(f"{role} refused but allowed: {where} {bodies[role]}")
            if role not in rule and (got[role] != 403 or bodies[role].get("code") != "forbidden"):
                problems.append(f"{role} not refused with 403: {where}")
    assert not problems, "\n".join(problems)
    assert counted["protected"] >= 30 and counted["public"] >= 5, counted


@pytest.mark.parametrize("role", ["anonymous", *ROLES])
def test_console_websocket_by_role(client: TestClient, runtime: Any, role: str) -> None:
    headers = {} if role == "anonymous" else role_headers(runtime, role)
    if role in CONSOLE:
        with client.websocket_connect("/console/ws", headers=headers) as ws:
            assert ws.receive_json()["type"] == "hello"
    else:
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/console/ws", headers=headers) as ws:
            ws.receive_json()
        assert refused.value.code == 4401


def test_classify_longest_key_wins() -> None:
    assert classify("/console/api/conversations/{cid}/reveal") == ADMIN
    assert classify("/console/api/conversations/{cid}/claim") == CONSOLE
    assert classify("/console") == PUBLIC and classify("/consoles") is None
    assert classify("/api/kb/documents/{doc_id}/diff") == EDITOR
    assert classify("/api/auth/me") == STAFF and classify("/api/auth/login") == PUBLIC
    assert classify("/api/new-thing") is None and classify("/nothing") is None
