"""No console route answers without a valid login; roles, CSRF, audited reveals of personal data."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from handoff_helpers import PASSWORD, login
from starlette.websockets import WebSocketDisconnect
from test_handoff_flow import close_all, say, sid

from connectors.console.router import PUBLIC_PATHS


@pytest.fixture(autouse=True)
def _empty_queue(runtime: Any) -> None:
    close_all(runtime)


def leaves(routes: list[Any]) -> list[Any]:
    """Every route, looking inside included routers (FastAPI keeps them nested)."""
    out = []
    for r in routes:
        inner = getattr(r, "original_router", None)
        if inner is not None:
            assert not r.include_context.prefix  # the console's paths are absolute
            out += leaves(inner.routes)
        else:
            out.append(r)
    return out


def console_routes(app: Any) -> list[Any]:
    return [r for r in leaves(app.routes) if getattr(r, "path", "").startswith("/console")]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "web0000000000000000", path)


def test_every_console_route_refuses_without_login(client: TestClient, app: Any) -> None:
    routes = console_routes(app)
    http = [r for r in routes if isinstance(r, APIRoute)]
    assert len(http) >= 18  # the list below is walked from the app, not written by hand
    checked = 0
    for route in http:
        if route.path in PUBLIC_PATHS:
            continue
        for method in route.methods:
            for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Cookie": "ga_session=forged"}):
                r = client.request(method, concrete(route.path), headers=headers, json={})
                assert r.status_code == 401, (method, route.path, headers, r.status_code, r.text)
                body = r.json()
                assert body["code"] == "unauthorized" and body["message_zh"] and body["message_en"]
                checked += 1
    assert checked >= 3 * 17
    # the public ones are exactly the page, its static files and the login call
    assert {r.path for r in http if r.path in PUBLIC_PATHS} == set(PUBLIC_PATHS)
    sockets = [r for r in routes if isinstance(r, APIWebSocketRoute)]
    assert [s.path for s in sockets] == ["/console/ws"]
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/console/ws") as ws:
        ws.receive_json()
    assert refused.value.code == 4401


def test_login_logout_disabled_user_and_wrong_password(client: TestClient, runtime: Any) -> None:
    r = client.post("/console/api/login", json={"username": "agent1", "password": "wrong-password"})
    assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    r = client.post("/console/api/login", json={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401
    headers = login(client, "agent1")
    assert client.get("/console/api/me", headers=headers).json()["user"]["username"] == "agent1"
    assert client.post("/console/api/logout", headers=headers).status_code == 200
    assert client.get("/console/api/me", headers=headers).status_code == 401
    name = f"gone{uuid.uuid4().hex[:6]}"
    runtime.accounts.create_user(name, PASSWORD, "agent")
    headers = login(client, name)
    runtime.accounts.set_active(name, False)
    assert client.get("/console/api/me", headers=headers).status_code == 401
    assert client.post("/console/api/login", json={"username": name, "password": PASSWORD}).status_code == 401
    failed = runtime.accounts.audit_entries("login.failure")
    assert {e["actor"] for e in failed} >= {"agent1", "nobody", name}


def test_cookie_sessions_need_the_csrf_token(client: TestClient, runtime: Any) -> None:
    cid = sid()
    say(client, cid, "转人工")
    r = client.post("/console/api/login", json={"username": "agent1", "password": PASSWORD})
    csrf = r.json()["csrf"]
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    assert client.get("/console/api/queue").status_code == 200  # reading with the cookie is fine
    r = client.post(f"/console/api/conversations/{cid}/claim")
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    assert client.post(f"/console/api/conversations/{cid}/claim", headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert client.post(f"/console/api/conversations/{cid}/claim", headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.clear()


def test_cross_site_websocket_with_a_cookie_is_refused(client: TestClient) -> None:
    client.post("/console/api/login", json={"username": "agent1", "password": PASSWORD})
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(
        "/console/ws", headers={"Origin": "https://evil.example"}
    ) as ws:
        ws.receive_json()
    with client.websocket_connect("/console/ws", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "hello"
    client.cookies.clear()


def test_reveal_is_for_admins_and_audited(client: TestClient, runtime: Any) -> None:
    cid = sid()
    say(client, cid, "我要预约换身份证")
    say(client, cid, "张三")
    say(client, cid, "１１０１０１１９９００３０７１２３３")  # full width, as typed on some phones
    say(client, cid, "转人工")
    say(client, cid, "我电话是139 1234 5678")
    agent = login(client, "agent1")
    view = client.get(f"/console/api/conversations/{cid}", headers=agent).json()
    fields = {f["slot"]: f["value"] for f in view["form"]["fields"]}
    assert fields["id_number"] == "1101**********1233"
    texts = [x["text"] for x in view["transcript"] if x["kind"] == "user"]
    assert "１１０１**********１２３３" not in texts  # masked whatever the width
    assert any(t.startswith("1101**********1233") for t in texts), texts
    assert "我电话是139****5678" in texts
    phone_index = next(x["index"] for x in view["transcript"] if x.get("text") == "我电话是139****5678")
    assert client.post(f"/console/api/conversations/{cid}/reveal", headers=agent, json={"index": phone_index}).status_code == 403
    admin = login(client, "boss")
    r = client.post(f"/console/api/conversations/{cid}/reveal", headers=admin, json={"index": phone_index})
    assert r.status_code == 200 and r.json()["item"]["text"] == "我电话是139 1234 5678"
    r = client.post(f"/console/api/conversations/{cid}/reveal", headers=admin, json={})
    assert {f["slot"]: f["value"] for f in r.json()["item"]["fields"]}["id_number"] == "110101199003071233"
    entries = [e for e in client.get("/console/api/audit?action=pii.reveal", headers=admin).json()["entries"]
               if e["target"] == cid]
    assert [(e["actor"], e["detail"]["index"]) for e in entries] == [("boss", "form"), ("boss", phone_index)]
    assert client.get("/console/api/audit", headers=agent).status_code == 403
