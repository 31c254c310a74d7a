from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from kb_fixture_files import FAQ_JSONL, MARKDOWN, TEST_CONFIG, make_pdf_bytes, make_service

from knowledge.api import make_router
from knowledge.service import KnowledgeService


def _user(x_user: str | None = Header(default=None)) -> str:
    # stands in for the editor issue's authentication: any dependency returning the user plugs in
    if not x_user:
        raise HTTPException(401, detail="login required")
    return x_user


def _client(service: KnowledgeService) -> TestClient:
    app = FastAPI()
    app.include_router(make_router(lambda: service, get_current_user=_user))
    return TestClient(app, headers={"X-User": "editor-li"})


@pytest.fixture()
def service(tmp_path: Path) -> KnowledgeService:
    return make_service(tmp_path)


@pytest.fixture()
def client(service: KnowledgeService) -> TestClient:
    return _client(service)


DOC = {
    "title": "居住证办理指南",
    "body": "## 申请条件\n在本市居住半年以上，有稳定就业或就读的，可以申领居住证。\n## 办理地点\n居住地派出所或社区服务中心。",
    "department": "公安局",
    "service_item": "居住证",
    "source_url": "https://gov.example.cn/residence",
    "effective_date": "2024-03-01",
    "tags": ["居住证"],
}


def _assert_error(response, status: int, code: str) -> None:  # noqa: ANN001
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message_zh"] and body["message_en"]


def test_authentication_is_a_pluggable_dependency(service: KnowledgeService) -> None:
    anonymous = TestClient(_client(service).app)
    assert anonymous.get("/api/kb/documents").status_code == 401


def test_document_crud_with_versions_and_diff(client: TestClient) -> None:
    created = client.post("/api/kb/documents", json=DOC)
    assert created.status_code == 201
    doc = created.json()
    assert (doc["status"], doc["current_version"], doc["published_version"]) == ("draft", 1, None)
    doc_id = doc["id"]

    updated = client.put(f"/api/kb/documents/{doc_id}", json={"body": DOC["body"].replace("半年", "六个月")})
    assert updated.status_code == 200 and updated.json()["current_version"] == 2
    assert updated.json()["title"] == DOC["title"]  # untouched fields stay

    versions = client.get(f"/api/kb/documents/{doc_id}/versions", params={"diff_from": 1, "diff_to": 2}).json()
    assert [(v["version"], v["created_by"]) for v in versions["versions"]] == [
        (1, "editor-li"),
        (2, "editor-li"),
    ]
    assert "-在本市居住半年以上" in versions["diff"] and "+在本市居住六个月以上" in versions["diff"]

    listed = client.get("/api/kb/documents", params={"q": "居住证", "status": "draft"}).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == doc_id
    assert client.get("/api/kb/documents", params={"tag": "户口"}).json()["total"] == 0

    archived = client.post(f"/api/kb/documents/{doc_id}/archive").json()
    assert archived["status"] == "archived"
    assert client.get(f"/api/kb/documents/{doc_id}").json()["status"] == "archived"



def test_document_versions_keep_their_singular_path_as_a_deprecated_alias(client: TestClient) -> None:
    doc_id = client.post("/api/kb/documents", json=DOC).json()["id"]
    client.put(f"/api/kb/documents/{doc_id}", json={"body": DOC["body"] + "\n## 咨询电话\n12345"})
    for params in ({}, {"diff_from": 1}):
        plural = client.get(f"/api/kb/documents/{doc_id}/versions", params=params)
        singular = client.get(f"/api/kb/document/{doc_id}/versions", params=params)
        assert plural.status_code == singular.status_code == 200
        assert plural.json() == singular.json()
    _assert_error(client.get("/api/kb/document/999999/versions"), 404, "kb.document_not_found")
    paths = client.app.openapi()["paths"]
    assert "deprecated" not in paths["/api/kb/documents/{doc_id}/versions"]["get"]
    assert paths["/api/kb/document/{doc_id}/versions"]["get"]["deprecated"] is True


def test_errors_are_bilingual_json(client: TestClient) -> None:
    _assert_error(client.get("/api/kb/documents/404"), 404, "kb.document_not_found")
    _assert_error(client.post("/api/kb/documents", json={"title": "缺正文"}), 422, "kb.invalid_request")
    bad_dates = {**DOC, "effective_date": "2025-01-01", "expiry_date": "2024-01-01"}
    _assert_error(client.post("/api/kb/documents", json=bad_dates), 422, "kb.invalid_document")
    _assert_error(client.post("/api/kb/versions/9/rollback"), 404, "kb.index_version_not_found")
    _assert_error(client.post("/api/kb/unanswered/9/handled"), 404, "kb.unanswered_question_not_found")


def test_faq_crud(client: TestClient) -> None:
    created = client.post(
        "/api/kb/faq",
        json={
            "question": "居住证多久能办好？",
            "answer": "一般15个工作日。",
            "similar_questions": ["居住证要等几天"],
        },
    )
    assert created.status_code == 201
    faq_id = created.json()["id"]
    changed = client.put(f"/api/kb/faq/{faq_id}", json={"answer": "一般10个工作日。", "category": "户政"})
    assert changed.json()["answer"] == "一般10个工作日。" and changed.json()["similar_questions"] == [
        "居住证要等几天"
    ]
    assert client.get("/api/kb/faq", params={"category": "户政"}).json()["total"] == 1
    assert client.post(f"/api/kb/faq/{faq_id}/archive").json()["status"] == "archived"
    _assert_error(client.put("/api/kb/faq/999", json={"answer": "x"}), 404, "kb.faq_not_found")


def test_import_publish_search_rollback_over_http(client: TestClient) -> None:
    upload = [
        ("files", ("id-card.md", MARKDOWN.encode(), "text/markdown")),
        ("files", ("faq.jsonl", FAQ_JSONL.encode(), "application/jsonl")),
        (
            "files",
            ("fund.pdf", make_pdf_bytes(["Housing fund withdrawal needs an ID card."]), "application/pdf"),
        ),
    ]
    report = client.post("/api/kb/import", files=upload).json()
    assert report["ok"] and [f["status"] for f in report["files"]] == ["created"] * 3
    assert report["totals"] == {"created": 5, "updated": 0, "duplicate": 0}
    again = client.post("/api/kb/import", files=upload).json()
    assert [f["status"] for f in again["files"]] == ["duplicate"] * 3

    first = client.post("/api/kb/publish").json()
    assert first["status"] == "live" and first["created_by"] == "editor-li"
    assert first["created_at"].endswith("Z") or first["created_at"].endswith("+00:00")
    assert first["passage_count"] == 10

    hit = client.post("/api/kb/search", json={"query": "社保卡在哪裡辦？", "k": 3}).json()
    assert hit["answered"] and hit["live_version"] == first["id"]
    assert hit["answer"] == "携带本人身份证到社保经办机构或合作银行网点申请。"
    top = hit["hits"][0]
    assert top["kind"] == "faq" and "fused" in top["scores"] and "dense" in top["scores"]
    assert hit["citations"] and hit["near_misses"] == []

    client.post("/api/kb/faq", json={"question": "居住证多久能办好？", "answer": "一般15个工作日。"})
    second = client.post("/api/kb/publish").json()
    versions = client.get("/api/kb/versions").json()
    assert [(v["id"], v["status"]) for v in versions] == [(second["id"], "live"), (first["id"], "previous")]
    rolled = client.post(f"/api/kb/versions/{first['id']}/rollback").json()
    assert rolled["status"] == "live"
    assert (
        client.post("/api/kb/search", json={"query": "社保卡在哪里办"}).json()["live_version"] == first["id"]
    )


def test_a_failing_upload_reports_file_and_row_and_writes_nothing(client: TestClient) -> None:
    upload = [
        ("files", ("id-card.md", MARKDOWN.encode(), "text/markdown")),
        ("files", ("faq.csv", "问题,答案\n护照怎么办？,去出入境窗口。\n签证呢？,\n".encode(), "text/csv")),
    ]
    response = client.post("/api/kb/import", files=upload)
    _assert_error(response, 422, "kb.import_failed")
    body = response.json()
    assert "faq.csv (row 3)" in body["message_en"]
    assert [(f["name"], f["status"], f["location"]) for f in body["report"]["files"]] == [
        ("id-card.md", "skipped", None),
        ("faq.csv", "failed", "row 3"),
    ]
    assert client.get("/api/kb/documents").json()["total"] == 0
    assert client.get("/api/kb/faq").json()["total"] == 0


def test_unanswered_questions_are_grouped_and_can_be_marked_handled(tmp_path: Path) -> None:
    strict = make_service(tmp_path, TEST_CONFIG.model_copy(update={"answer_threshold": 1.0}))
    client = _client(strict)
    client.post("/api/kb/import", files=[("files", ("faq.jsonl", FAQ_JSONL.encode(), "application/jsonl"))])
    client.post("/api/kb/publish")
    for q in ["宠物狗怎么上户口？", "寵物狗怎麼上戶口?", "宠物狗怎么上户口？"]:
        assert not strict.search(q).answered  # the assistant's path records them
    client.post("/api/kb/search", json={"query": "宠物狗怎么上户口？"})  # hit testing does not
    rows = client.get("/api/kb/unanswered").json()
    assert [(r["normalized"], r["count"]) for r in rows] == [("宠物狗怎么上户口?", 3)]
    assert rows[0]["first_asked"] <= rows[0]["last_asked"] and rows[0]["near_miss_keys"]
    done = client.post(f"/api/kb/unanswered/{rows[0]['id']}/handled").json()
    assert done["handled"] is True
    assert client.get("/api/kb/unanswered").json() == []
    assert len(client.get("/api/kb/unanswered", params={"include_handled": True}).json()) == 1
