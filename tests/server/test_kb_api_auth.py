"""The knowledge-base editor API is mounted by the server, and only answers a logged-in editor or admin."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi.testclient import TestClient


def _token(runtime: Any, role: str) -> str:
    name = f"{role}-{secrets.token_hex(4)}"
    user = runtime.accounts.create_user(name, "correct horse battery", role)
    token, _csrf, _expires = runtime.accounts.open_session(user)
    return token


def test_kb_api_refuses_anonymous_and_agents(client: TestClient, runtime: Any) -> None:
    r = client.get("/api/kb/documents")
    assert r.status_code == 401
    assert {"code", "message_zh", "message_en"} <= r.json().keys()
    agent = _token(runtime, "agent")
    r = client.get("/api/kb/documents", headers={"Authorization": f"Bearer {agent}"})
    assert r.status_code == 403


def test_admin_searches_the_published_knowledge_base(client: TestClient, runtime: Any) -> None:
    admin = _token(runtime, "admin")
    headers = {"Authorization": f"Bearer {admin}"}
    docs = client.get("/api/kb/documents", headers=headers)
    assert docs.status_code == 200 and docs.json()["total"] > 0
    hit = client.post("/api/kb/search", headers=headers, json={"query": "社保卡丢了怎么办"})
    assert hit.status_code == 200
    body = hit.json()
    assert body["hits"], body
