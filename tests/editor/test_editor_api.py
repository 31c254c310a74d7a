"""The editor's login and the knowledge-API additions the page needs, over HTTP against the real server app:
Markdown preview (sanitized), version diff, grouped unanswered questions, FAQ entries made from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from knowledge.repository import record_unanswered


def _error(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["message_zh"] and body["message_en"], body


# ---- the page and its login ---------------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_locally_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/editor")
    assert page.status_code == 200 and "知识库编辑台" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "http" not in page.text.replace("https://\"", "")  # nothing from another origin
    for name, kind in (("editor.js", "javascript"), ("editor.css", "css")):
        r = client.get(f"/editor/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    _error(client.get("/editor/static/..%2Fconftest.py"), 404, "not_found")


def test_login_sets_the_staff_cookie_and_writes_need_the_csrf_token(client: TestClient, runtime: Any,
                                                                     staff_password: str) -> None:
    _error(client.post("/api/editor/login", json={"username": "editor-li", "password": "wrong-password"}),
           401, "bad_credentials")
    _error(client.post("/api/editor/login", json={"username": "agent-wang", "password": staff_password}),
           401, "bad_credentials")  # agents use the console, not the editor
    r = client.post("/api/editor/login", json={"username": "editor-li", "password": staff_password})
    assert r.status_code == 200 and "token" not in r.json()
    cookie = r.headers["set-cookie"]
    assert "ga_session=" in cookie and "Path=/;" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    csrf = r.json()["csrf"]
    assert [e["actor"] for e in runtime.accounts.audit_entries("login.success")][:1] == ["editor-li"]
    assert client.get("/api/editor/me").json()["user"]["username"] == "editor-li"
    assert client.get("/api/kb/documents").status_code == 200  # the cookie reaches the knowledge API
    _error(client.post("/api/kb/preview", json={"markdown": "x"}), 403, "csrf_failed")
    assert client.post("/api/kb/preview", json={"markdown": "x"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.post("/api/editor/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    _error(client.get("/api/editor/me"), 401, "unauthorized")


# ---- preview ------------------------------------------------------------------------------------------------


def test_preview_renders_markdown_and_escapes_html_and_script(editor: TestClient) -> None:
    source = (
        "## 办理地点\n\n**政通路12号**，见[官网](https://www.yunzhou.gov.cn/a)。\n\n"
        "<script>alert(1)</script>\n\n<img src=x onerror=\"alert(2)\">\n\n"
        "[点我](javascript:alert(3)) [数据](data:text/html;base64,PHNjcmlwdD4=)\n\n"
        "| 材料 | 份数 |\n|---|---|\n| 身份证 | 1 |\n"
    )
    r = editor.post("/api/kb/preview", json={"markdown": source})
    assert r.status_code == 200
    html = r.json()["html"]
    assert "<h2>办理地点</h2>" in html and "<strong>政通路12号</strong>" in html
    assert '<a href="https://www.yunzhou.gov.cn/a">官网</a>' in html and "<td>身份证</td>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "&lt;img" in html and "<img" not in html
    assert 'href="javascript:' not in html and 'href="data:' not in html
    _error(editor.post("/api/kb/preview", json={"markdown": "x" * 200_001}), 422, "kb.invalid_request")


# ---- diff ---------------------------------------------------------------------------------------------------

DOC = {
    "title": "云州市图书馆读者证办理",
    "body": "## 办理条件\n年满十六周岁的居民。\n## 办理地点\n云州市图书馆一楼总服务台。\n## 费用\n免费。",
    "department": "云州市文化和旅游局",
    "service_item": "读者证办理",
    "effective_date": "2025-01-01",
    "tags": ["图书馆"],
}


def test_diff_between_two_versions_lists_removed_and_added_lines(editor: TestClient) -> None:
    doc = editor.post("/api/kb/documents", json=DOC).json()
    body = DOC["body"].replace("一楼总服务台", "二楼自助办证机")
    editor.put(f"/api/kb/documents/{doc['id']}", json={"body": body, "department": "云州市图书馆"})
    r = editor.get(f"/api/kb/documents/{doc['id']}/diff", params={"from": 1, "to": 2})
    assert r.status_code == 200, r.text
    diff = r.json()
    assert (diff["from_version"], diff["to_version"]) == (1, 2)
    changed = [(d["op"], d["text"]) for d in diff["lines"] if d["op"] in ("add", "del")]
    assert ("del", "云州市图书馆一楼总服务台。") in changed and ("add", "云州市图书馆二楼自助办证机。") in changed
    assert ("del", "部门：云州市文化和旅游局") in changed and ("add", "部门：云州市图书馆") in changed
    assert ("ctx", "服务事项：读者证办理") in [(d["op"], d["text"]) for d in diff["lines"]]
    assert diff["lines"][0]["op"] == "hunk" and any(d["op"] == "ctx" for d in diff["lines"])
    removed = next(d for d in diff["lines"] if d["text"] == "云州市图书馆一楼总服务台。")
    assert removed["old"] is not None and removed["new"] is None
    assert "-云州市图书馆一楼总服务台。" in diff["unified"]
    # without versions: the previous one against the current one
    assert editor.get(f"/api/kb/documents/{doc['id']}/diff").json()["lines"] == diff["lines"]
    assert editor.get(f"/api/kb/documents/{doc['id']}/diff", params={"from": 2, "to": 2}).json()["lines"] == []
    _error(editor.get(f"/api/kb/documents/{doc['id']}/diff", params={"from": 1, "to": 9}), 404,
           "kb.document_version_not_found")
    _error(editor.get(f"/api/kb/documents/{doc['id']}/diff", params={"from": "x"}), 422, "kb.invalid_request")
    _error(editor.get("/api/kb/documents/99999/diff"), 404, "kb.document_not_found")


def test_facets_offer_departments_and_count_what_waits_for_publishing(editor: TestClient) -> None:
    editor.post("/api/kb/documents", json={**DOC, "title": "读者证补办", "department": "云州市档案馆"})
    f = editor.get("/api/kb/facets").json()
    assert "云州市档案馆" in f["departments"] and f["pending"]["documents"] >= 1


# ---- unanswered questions -----------------------------------------------------------------------------------


def _ask(runtime: Any, *questions: str, when: datetime | None = None) -> None:
    """Questions the assistant could not answer, recorded as its search records them."""
    with runtime.knowledge.session_factory() as s, s.begin():
        for q in questions:
            record_unanswered(s, q, [], now=when)


def _group(groups: list[dict[str, Any]], text: str) -> dict[str, Any]:
    found = [g for g in groups if any(text in m["query"] for m in g["members"])]
    assert len(found) == 1, groups
    return found[0]


def test_unanswered_questions_are_grouped_with_counts_and_dates(editor: TestClient, runtime: Any) -> None:
    early = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    _ask(runtime, "游泳馆年卡丢了咋办", when=early)
    _ask(runtime, "游泳馆年卡丢了怎么办", "游泳馆年卡丢了怎么办", when=early + timedelta(days=3))
    _ask(runtime, "游泳馆年卡丢失如何处理", "游泳馆停车收费吗", when=early + timedelta(days=4))
    groups = editor.get("/api/kb/unanswered/groups").json()
    lost = _group(groups, "游泳馆年卡丢了咋办")
    assert lost["question"] == "游泳馆年卡丢了怎么办" and lost["count"] == 4
    assert sorted(m["query"] for m in lost["members"]) == sorted(["游泳馆年卡丢了咋办", "游泳馆年卡丢了怎么办", "游泳馆年卡丢失如何处理"])
    assert lost["first_asked"].startswith("2026-01-05") and lost["last_asked"].startswith("2026-01-09")
    parking = _group(groups, "游泳馆停车收费吗")
    assert parking["count"] == 1 and parking["ids"] != lost["ids"]
    # marking the group handled takes every wording off the list at once
    done = editor.post("/api/kb/unanswered/handled", json={"ids": lost["ids"]}).json()
    assert sorted(d["id"] for d in done) == sorted(lost["ids"]) and all(d["handled"] for d in done)
    assert not [g for g in editor.get("/api/kb/unanswered/groups").json() if g["ids"] == lost["ids"]]
    shown = editor.get("/api/kb/unanswered/groups", params={"include_handled": True}).json()
    assert _group(shown, "游泳馆年卡丢了咋办")["count"] == 4
    _error(editor.post("/api/kb/unanswered/handled", json={"ids": []}), 422, "kb.invalid_request")


def test_an_unanswered_group_becomes_a_draft_faq_entry_and_is_handled(editor: TestClient, runtime: Any) -> None:
    _ask(runtime, "城市书房几点关门", "城市书房几点关门？", "城市书房几点关门啊")
    group = _group(editor.get("/api/kb/unanswered/groups").json(), "城市书房几点关门")
    before = editor.get("/api/kb/faq").json()["total"]
    _error(editor.post("/api/kb/unanswered/faq", json={"question_ids": [*group["ids"], 987654], "answer": "x"}),
           404, "kb.unanswered_question_not_found")
    assert editor.get("/api/kb/faq").json()["total"] == before  # nothing written
    r = editor.post("/api/kb/unanswered/faq", json={
        "question_ids": group["ids"], "question": "", "answer": "城市书房每天 9:00—21:00 开放，节假日照常。",
        "category": "文化",
    })
    assert r.status_code == 201, r.text
    made = r.json()
    faq = made["faq"]
    assert faq["status"] == "draft" and faq["created_by"] == "editor-li" and faq["category"] == "文化"
    assert faq["question"] in {m["query"] for m in group["members"]}  # the citizen's own words
    assert faq["answer"] == "城市书房每天 9:00—21:00 开放，节假日照常。"
    assert all(m["handled"] for m in made["handled"]) and len(made["handled"]) == len(group["ids"])
    assert not [g for g in editor.get("/api/kb/unanswered/groups").json() if set(g["ids"]) & set(group["ids"])]
    assert editor.get(f"/api/kb/faq/{faq['id']}").json()["answer"] == faq["answer"]
    _error(editor.post("/api/kb/unanswered/faq", json={"question_ids": group["ids"], "answer": ""}),
           422, "kb.invalid_request")


def test_other_wordings_become_alternative_phrasings(editor: TestClient, runtime: Any) -> None:
    _ask(runtime, "体育中心羽毛球场怎么预约")
    _ask(runtime, "体育中心羽毛球场咋预约呀")
    group = _group(editor.get("/api/kb/unanswered/groups").json(), "体育中心羽毛球场怎么预约")
    assert len(group["ids"]) == 2
    faq = editor.post("/api/kb/unanswered/faq", json={
        "question_ids": group["ids"], "question": "体育中心羽毛球场怎么预约？", "answer": "在“云州体育”公众号预约。",
    }).json()["faq"]
    assert faq["question"] == "体育中心羽毛球场怎么预约？"
    assert sorted(faq["similar_questions"]) == ["体育中心羽毛球场咋预约呀"]  # the same text is not repeated


def test_out_of_range_ids_are_refused_not_crashed_on(editor: TestClient) -> None:
    huge = 2**63
    for r in (
        editor.get(f"/api/kb/documents/{huge}/diff"),
        editor.get("/api/kb/documents/1/diff", params={"from": huge}),
        editor.get(f"/api/kb/documents/{huge}"),
        editor.post(f"/api/kb/versions/{huge}/rollback"),
        editor.post("/api/kb/unanswered/handled", json={"ids": [huge]}),
        editor.post("/api/kb/unanswered/faq", json={"question_ids": [huge], "answer": "x"}),
    ):
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
