"""The admin API and page: accounts managed by admins through HTTP, changes effective at once, CSRF on cookie
writes, refusals with bilingual errors; the shared staff login."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import FAST_HASHER, PASSWORD, bearer
from fastapi.testclient import TestClient

from assistant.accounts import AccountError, Accounts


def _new(client: TestClient, admin: dict[str, str], role: str = "agent") -> str:
    name = "ad" + uuid.uuid4().hex[:8]
    r = client.post("/api/admin/users", headers=admin, json={"username": name, "password": PASSWORD, "role": role})
    assert r.status_code == 201, r.text
    return name


def test_list_and_create_users(client: TestClient, runtime: Any) -> None:
    admin = bearer(runtime, "admin1")
    r = client.post("/api/admin/users", headers=admin, json={
        "username": "chen" + uuid.uuid4().hex[:4], "password": PASSWORD, "role": "editor", "display_name": "陈编辑",
        "team": None})
    assert r.status_code == 201
    created = r.json()["user"]
    assert created["role"] == "editor" and created["active"] and created["display_name"] == "陈编辑"
    listed = client.get("/api/admin/users", headers=admin).json()
    assert listed["roles"] == ["agent", "editor", "admin"]
    row = next(u for u in listed["users"] if u["username"] == created["username"])
    assert row == created and "password_hash" not in row
    assert runtime.accounts.authenticate(created["username"], PASSWORD) is not None


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"username": "x", "password": PASSWORD, "role": "agent"}, 422, "invalid_request"),  # too short
    ({"username": "名字", "password": PASSWORD, "role": "agent"}, 422, "invalid_request"),
    ({"username": "okname", "password": "short", "role": "agent"}, 422, "invalid_request"),
    ({"username": "okname", "password": PASSWORD, "role": "root"}, 422, "invalid_request"),
    ({"username": "okname", "password": PASSWORD, "role": "agent", "is_admin": True}, 422, "invalid_request"),
    ({"username": "admin1", "password": PASSWORD, "role": "agent"}, 409, "username_taken"),
])
def test_bad_new_users_are_refused(client: TestClient, runtime: Any, body: dict[str, Any], status: int,
                                   code: str) -> None:
    r = client.post("/api/admin/users", headers=bearer(runtime, "admin1"), json=body)
    assert r.status_code == status and r.json()["code"] == code, r.text
    assert r.json()["message_zh"] and r.json()["message_en"]


def test_changes_take_effect_at_once(client: TestClient, runtime: Any) -> None:
    admin = bearer(runtime, "admin1")
    name = _new(client, admin, "agent")
    theirs = bearer(runtime, name)
    assert client.get("/console/api/queue", headers=theirs).status_code == 200
    assert client.get("/api/kb/documents", headers=theirs).status_code == 403
    # a new role applies to the session already open
    assert client.post(f"/api/admin/users/{name}/role", headers=admin, json={"role": "editor"}).json()["user"]["role"] == "editor"
    assert client.get("/api/kb/documents", headers=theirs).status_code == 200
    assert client.get("/console/api/queue", headers=theirs).status_code == 403
    # disabling ends the session; enabling does not bring it back
    assert client.post(f"/api/admin/users/{name}/disable", headers=admin).json()["user"]["active"] is False
    assert client.get("/api/kb/documents", headers=theirs).status_code == 401
    assert client.post("/api/auth/login", json={"username": name, "password": PASSWORD}).status_code == 401
    assert client.post(f"/api/admin/users/{name}/enable", headers=admin).json()["user"]["active"] is True
    assert client.get("/api/kb/documents", headers=theirs).status_code == 401
    # a new password ends every session and replaces the old one
    fresh = bearer(runtime, name)
    r = client.post(f"/api/admin/users/{name}/password", headers=admin, json={"password": "a brand new password"})
    assert r.status_code == 200
    assert client.get("/api/kb/documents", headers=fresh).status_code == 401
    assert client.post("/api/auth/login", json={"username": name, "password": PASSWORD}).status_code == 401
    assert client.post("/api/auth/login", json={"username": name, "password": "a brand new password"}).status_code == 200


def test_admins_cannot_lock_themselves_out(client: TestClient, runtime: Any) -> None:
    admin = bearer(runtime, "admin1")
    r = client.post("/api/admin/users/admin1/disable", headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "not_yourself"
    r = client.post("/api/admin/users/admin1/role", headers=admin, json={"role": "editor"})
    assert r.status_code == 409 and r.json()["code"] == "not_yourself"
    assert client.post("/api/admin/users/admin1/role", headers=admin, json={"role": "admin"}).status_code == 200
    for path in ("/api/admin/users/nobody-here/disable", "/api/admin/users/nobody-here/enable"):
        r = client.post(path, headers=admin)
        assert r.status_code == 404 and r.json()["code"] == "no_such_user"
    r = client.post("/api/admin/users/nobody-here/password", headers=admin, json={"password": "short"})
    assert r.status_code == 422
    assert runtime.accounts.get("admin1").active  # type: ignore[union-attr]


def test_the_last_active_admin_stays(tmp_path: Path) -> None:
    accounts = Accounts(f"sqlite:///{tmp_path / 'a.db'}", hasher=FAST_HASHER)
    accounts.create_user("only", PASSWORD, "admin")
    accounts.create_user("second", PASSWORD, "admin")
    accounts.set_active("second", False, by="only")
    for change in (lambda: accounts.set_active("only", False, by="x"), lambda: accounts.set_role("only", "agent")):
        with pytest.raises(AccountError) as refused:
            change()
        assert refused.value.code == "last_admin"
    accounts.set_active("second", True)
    assert accounts.set_role("only", "agent").role == "agent"  # another admin is active now


def test_cookie_sessions_need_the_csrf_token_and_cover_every_staff_page(client: TestClient) -> None:
    r = client.post("/api/auth/login", json={"username": "admin1", "password": PASSWORD})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/;" in cookie
    csrf = r.json()["csrf"]
    assert r.json()["pages"] == ["/console", "/editor", "/admin"]
    body = {"username": "ck" + uuid.uuid4().hex[:6], "password": PASSWORD, "role": "agent"}
    r = client.post("/api/admin/users", json=body)
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed"
    assert client.post("/api/admin/users", json=body, headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert client.post("/api/admin/users", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201
    # one login for the console, the editor API and the admin API
    assert client.get("/console/api/queue").status_code == 200
    assert client.get("/api/kb/documents").status_code == 200
    assert client.get("/api/auth/me").json()["csrf"] == csrf
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/admin/users").status_code == 401


def test_the_page_and_its_files(client: TestClient) -> None:
    r = client.get("/admin")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    assert "系统管理" in r.text and "<script src=\"/admin/static/admin.js\"></script>" in r.text
    assert client.get("/admin/static/admin.js").status_code == 200
    assert client.get("/admin/static/admin.css").headers["content-type"].startswith("text/css")
    r = client.get("/admin/static/..%2Fauth.py")
    assert r.status_code == 404
