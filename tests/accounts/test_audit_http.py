"""Every privileged action leaves one audit entry — who, what, on what, from where — made through the real HTTP
routes of the server; request bodies (documents, answers, passwords, personal data) never reach the log."""

from __future__ import annotations

import json
import uuid
from typing import Any

from accounts_helpers import PASSWORD, bearer
from fastapi.testclient import TestClient

from knowledge import repository as repo

SECRET_BODY = "审计正文不应出现在日志里-" + uuid.uuid4().hex[:8]


def entries_since(runtime: Any, mark: int) -> list[dict[str, Any]]:
    return [e for e in runtime.accounts.audit_log.search(limit=500).entries if e["id"] > mark]


def last_id(runtime: Any) -> int:
    page = runtime.accounts.audit_log.search(limit=1).entries
    return page[0]["id"] if page else 0


def only(entries: list[dict[str, Any]], action: str) -> dict[str, Any]:
    found = [e for e in entries if e["action"] == action]
    assert len(found) == 1, (action, entries)
    return found[0]


def test_knowledge_changes_are_audited_without_their_content(client: TestClient, runtime: Any, address: str) -> None:
    editor = bearer(runtime, "editor1")
    src = address
    mark = last_id(runtime)
    # reads and hit testing leave nothing
    assert client.get("/api/kb/documents", headers=editor).status_code == 200
    assert client.post("/api/kb/search", headers=editor, json={"query": "身份证过期怎么办"}).status_code == 200
    assert entries_since(runtime, mark) == []

    r = client.post("/api/kb/documents", headers=editor,
                    json={"title": "审计测试文档", "body": SECRET_BODY + " 办理地点：市民中心。", "department": "市民中心"})
    assert r.status_code == 201, r.text
    doc_id = r.json()["id"]
    r = client.put(f"/api/kb/documents/{doc_id}", headers=editor, json={"body": SECRET_BODY + " 新的办理时间：工作日。"})
    assert r.status_code == 200, r.text
    # a refused change (no such document) is not an action
    assert client.put("/api/kb/documents/999999", headers=editor, json={"title": "x"}).status_code == 404
    r = client.post("/api/kb/faq", headers=editor, json={"question": "审计测试问题？", "answer": SECRET_BODY})
    assert r.status_code == 201, r.text
    faq_id = r.json()["id"]
    assert client.put(f"/api/kb/faq/{faq_id}", headers=editor, json={"answer": SECRET_BODY + "（更新）"}).status_code == 200
    md = f"# 审计导入文档\n\n{SECRET_BODY} 导入的正文。\n".encode()
    r = client.post("/api/kb/import", headers=editor, files=[("files", ("audit-import.md", md, "text/markdown"))])
    assert r.status_code == 200, r.text
    with runtime.knowledge.session_factory() as s, s.begin():
        question = repo.record_unanswered(s, "审计测试：火星上怎么办理居住证？" + uuid.uuid4().hex[:6], [])
        assert question is not None
        qid = question.id
    assert client.post(f"/api/kb/unanswered/{qid}/handled", headers=editor).status_code == 200
    before = runtime.knowledge.live_version
    r = client.post("/api/kb/publish", headers=editor)
    assert r.status_code == 200, r.text
    published = r.json()["id"]
    assert client.post(f"/api/kb/versions/{before}/rollback", headers=editor).status_code == 200

    got = entries_since(runtime, mark)
    expected = {
        "kb.document.create": "", "kb.document.update": str(doc_id), "kb.faq.create": "",
        "kb.faq.update": str(faq_id), "kb.import": "", "kb.unanswered.handled": str(qid), "kb.publish": "",
        "kb.rollback": str(before),
    }
    assert sorted(e["action"] for e in got) == sorted(expected), got
    for action, target in expected.items():
        e = only(got, action)
        assert (e["actor"], e["target"], e["source"]) == ("editor1", target, src), e
        assert e["detail"]["status"] in (200, 201) and e["detail"]["method"] in ("POST", "PUT")
    assert only(got, "kb.rollback")["detail"]["path"] == f"/api/kb/versions/{before}/rollback"
    assert published != before
    # no body, no document text, no answer in the log
    assert SECRET_BODY not in json.dumps(got, ensure_ascii=False)


def _queued(client: TestClient, text: str = "转人工") -> str:
    cid = "web" + uuid.uuid4().hex[:16]
    for line in ("我要预约换身份证", "张三", "110101199003071233", text):
        r = client.post("/webchat/messages", json={"session_id": cid, "message_id": uuid.uuid4().hex, "text": line})
        assert r.status_code == 200, r.text
    return cid


def test_claims_transfers_and_reveals_are_audited_once(client: TestClient, runtime: Any, address: str) -> None:
    from assistant.handoff.store import CLOSED

    for s in runtime.handoff.store.open_sessions():
        runtime.handoff.store.transition(s.id, (s.state,), CLOSED, outcome="spam")
    src = address
    cid = _queued(client)
    agent, admin = bearer(runtime, "agent1"), bearer(runtime, "admin1")
    mark = last_id(runtime)
    assert client.post(f"/console/api/conversations/{cid}/claim", headers=agent).status_code == 200
    r = client.post(f"/console/api/conversations/{cid}/messages", headers=agent, json={"text": "您好，我是王芳"})
    assert r.status_code == 200, r.text
    r = client.post(f"/console/api/conversations/{cid}/transfer", headers=agent, json={"to_team": "social_security"})
    assert r.status_code == 200, r.text
    r = client.post(f"/console/api/conversations/{cid}/reveal", headers=admin, json={})
    assert r.status_code == 200, r.text
    assert client.post(f"/console/api/conversations/{cid}/typing", headers=agent, json={"on": True}).status_code in (200, 409)
    got = entries_since(runtime, mark)
    # the explicit entries (with their detail) and no second, generic one for the same request
    assert [e["action"] for e in got] == ["pii.reveal", "handoff.transfer", "handoff.reply", "handoff.claim"], got
    claim, reply, transfer, reveal = got[3], got[2], got[1], got[0]
    assert (claim["actor"], claim["target"], claim["source"]) == ("agent1", cid, src)
    assert (reply["actor"], reply["target"]) == ("agent1", cid) and "您好" not in json.dumps(reply, ensure_ascii=False)
    assert transfer["detail"]["to_team"] == "social_security"
    assert (reveal["actor"], reveal["target"], reveal["detail"]) == ("admin1", cid, {"index": "form"})
    assert "110101199003071233" not in json.dumps(got)


def test_account_changes_are_audited_with_the_admin(client: TestClient, runtime: Any, address: str) -> None:
    admin = bearer(runtime, "admin1")
    src = address
    name = "aud" + uuid.uuid4().hex[:6]
    mark = last_id(runtime)
    r = client.post("/api/admin/users", headers=admin,
                    json={"username": name, "password": "first password", "role": "agent", "display_name": "审计"})
    assert r.status_code == 201, r.text
    assert client.post(f"/api/admin/users/{name}/disable", headers=admin).status_code == 200
    assert client.post(f"/api/admin/users/{name}/enable", headers=admin).status_code == 200
    assert client.post(f"/api/admin/users/{name}/password", headers=admin, json={"password": "second password"}).status_code == 200
    assert client.post(f"/api/admin/users/{name}/role", headers=admin, json={"role": "editor"}).status_code == 200
    got = entries_since(runtime, mark)
    assert [e["action"] for e in got] == ["user.role", "user.reset_password", "user.enable", "user.disable", "user.create"]
    assert all((e["actor"], e["target"], e["source"]) == ("admin1", name, src) for e in got), got
    assert got[0]["detail"] == {"from": "agent", "to": "editor"}
    assert got[-1]["detail"]["role"] == "agent"
    text = json.dumps(got)
    assert "first password" not in text and "second password" not in text


def test_logins_and_logouts_are_audited_without_passwords(client: TestClient, runtime: Any, address: str) -> None:
    src = address
    mark = last_id(runtime)
    r = client.post("/api/auth/login", json={"username": "editor1", "password": "not the password"})
    assert r.status_code == 401 and r.json()["code"] == "bad_credentials"
    r = client.post("/api/auth/login", json={"username": "editor1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf"]
    assert "/editor" in r.json()["pages"] and "/console" not in r.json()["pages"]
    # an editor may not log in to the console: a failure, with its reason
    assert client.post("/console/api/login", json={"username": "editor1", "password": PASSWORD}).status_code == 401
    assert client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/api/auth/me").status_code == 401
    r = client.post("/console/api/login", json={"username": "agent1", "password": PASSWORD})
    assert r.status_code == 200
    assert client.post("/console/api/logout", headers={"X-CSRF-Token": r.json()["csrf"]}).status_code == 200
    got = entries_since(runtime, mark)[::-1]
    assert [(e["action"], e["actor"], e["target"]) for e in got] == [
        ("login.failure", "editor1", "auth"), ("login.success", "editor1", "auth"),
        ("login.failure", "editor1", "console"), ("logout", "editor1", "auth"),
        ("login.success", "agent1", "console"), ("logout", "agent1", "console"),
    ]
    assert [e["detail"].get("reason") for e in got if e["action"] == "login.failure"] == ["credentials", "role"]
    assert {e["source"] for e in got} == {src}
    text = json.dumps(got)
    assert PASSWORD not in text and "not the password" not in text


def test_the_audit_log_is_for_admins_and_filters_and_pages(client: TestClient, runtime: Any) -> None:
    admin = bearer(runtime, "admin1")
    name = "pg" + uuid.uuid4().hex[:6]
    for i in range(3):
        r = client.post("/api/admin/users", headers=admin,
                        json={"username": f"{name}{i}", "password": "long enough pw", "role": "agent"})
        assert r.status_code == 201
    r = client.get("/api/admin/audit", headers=admin, params={"actor": "admin1", "action": "user.create", "limit": 2})
    body = r.json()
    assert r.status_code == 200 and body["limit"] == 2 and len(body["entries"]) == 2 and body["total"] >= 3
    assert [e["target"] for e in body["entries"]] == [f"{name}2", f"{name}1"]
    r = client.get("/api/admin/audit", headers=admin, params={"actor": "admin1", "action": "user.create", "limit": 2,
                                                             "offset": 2})
    assert r.json()["entries"][0]["target"] == f"{name}0"
    # "user" is a prefix of user.create, user.disable, ...
    prefixed = client.get("/api/admin/audit", headers=admin, params={"action": "user", "limit": 200}).json()
    assert {e["action"].split(".")[0] for e in prefixed["entries"]} == {"user"}
    # date range: nothing in the future, everything since yesterday
    now = runtime.accounts.clock()
    from datetime import UTC, datetime, timedelta

    future = (datetime.fromtimestamp(now, UTC) + timedelta(days=1)).isoformat()
    assert client.get("/api/admin/audit", headers=admin, params={"since": future}).json()["total"] == 0
    past = (datetime.fromtimestamp(now, UTC) - timedelta(days=1)).isoformat()
    assert client.get("/api/admin/audit", headers=admin, params={"since": past, "until": future}).json()["total"] >= 3
    assert client.get("/api/admin/audit", headers=admin, params={"since": "not a date"}).status_code == 422
    assert client.get("/api/admin/audit", headers=admin, params={"limit": 100000}).status_code == 422
    # the audit log has no route that changes it
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, "/api/admin/audit", headers=admin).status_code == 405
