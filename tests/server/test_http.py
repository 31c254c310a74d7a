"""Rasa-compatible REST endpoints, health, docs and the request guards, on the real runtime."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_harness import FORM_START, assert_error_body, form_answer

from assistant.app import create_app
from assistant.server_config import ServerConfig

RASA_KEYS = {"recipient_id", "text", "image", "buttons", "custom"}


def webhook(client: TestClient, sender: str, message: Any, **extra: Any) -> Any:
    return client.post("/webhooks/rest/webhook", json={"sender": sender, "message": message, **extra})


def test_rest_webhook_answers_a_rasa_message_list(client: TestClient) -> None:
    resp = webhook(client, "rest-greet", "你好", metadata={"page": "home"})
    assert resp.status_code == 200
    body = resp.json()
    assert isinstance(body, list) and body
    for msg in body:
        assert msg["recipient_id"] == "rest-greet"
        assert set(msg) <= RASA_KEYS and set(msg) & {"text", "image", "buttons", "custom"}
    assert "您好" in body[0]["text"]


def test_rest_webhook_buttons_and_custom_citations_shapes(client: TestClient) -> None:
    # a policy question is answered from the knowledge base: the citations ride in "custom" as Rasa has no field
    body = webhook(client, "rest-kb", "市民中心开放时间").json()
    cited = [m for m in body if "custom" in m]
    assert cited, body
    citation = cited[0]["custom"]["citations"][0]
    assert citation["title"]
    # the ID-card form asks for fields (some with buttons); its confirmation offers Rasa's {"title", "payload"}
    body = webhook(client, "rest-form", FORM_START).json()
    for _ in range(10):
        if any(b["title"] == "确认提交" for m in body for b in m.get("buttons", [])):
            break
        body = webhook(client, "rest-form", form_answer(body[-1]["text"])).json()
    buttons = [b for m in body for b in m.get("buttons", [])]
    assert buttons and all(set(b) == {"title", "payload"} for b in buttons), body
    assert any(b["payload"] == "/affirm" for b in buttons)
    assert "1101**********7571" in body[-1]["text"] or "1101**********7571" in body[0]["text"]


def test_rest_webhook_traditional_full_width_mixed_input(client: TestClient) -> None:
    body = webhook(client, "rest-messy", "ＨＩ　您好！！請問身份證到期了怎麼換").json()
    assert body and all(m["recipient_id"] == "rest-messy" for m in body)


def test_model_parse_has_rasa_shape(client: TestClient) -> None:
    resp = client.post("/model/parse", json={"text": "我的电话是13912345678，身份证丢了想补办"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["text"] == "我的电话是13912345678，身份证丢了想补办"
    assert set(body["intent"]) >= {"name", "confidence"} and 0 <= body["intent"]["confidence"] <= 1
    assert body["intent_ranking"] and body["intent_ranking"][0]["name"] == body["intent"]["name"]
    phones = [e for e in body["entities"] if e["entity"] == "phone"]
    assert phones and {"start", "end", "value"} <= set(phones[0])
    assert body["text"][phones[0]["start"] : phones[0]["end"]] == "13912345678"


def test_health_readiness_and_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["nlu_model"] and checks["database"] and checks["knowledge_index"]
    spec = client.get("/openapi.json").json()
    assert {"/webhooks/rest/webhook", "/model/parse", "/webchat/messages", "/healthz"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"sender": "x", "message": ', {"content-type": "application/json"}),  # truncated
        (b"\xff\xfe\x00garbage", {"content-type": "application/json"}),  # not UTF-8
        (b"[1, 2, 3]", {"content-type": "application/json"}),  # a list, not an object
        (b"", {"content-type": "application/json"}),
        (b"sender=x&message=hi", {"content-type": "application/x-www-form-urlencoded"}),
    ],
)
def test_malformed_bodies_get_4xx_with_bilingual_errors(client: TestClient, content: bytes, headers: dict[str, str]) -> None:
    for path in ("/webhooks/rest/webhook", "/model/parse", "/webchat/messages"):
        resp = client.post(path, content=content, headers=headers)
        assert resp.status_code in (400, 422), (path, resp.status_code, resp.text)
        assert_error_body(resp.json())


@pytest.mark.parametrize(
    "body",
    [
        {"sender": "x", "message": 123},
        {"sender": "x", "message": ["a"]},
        {"sender": "x", "message": None},
        {"sender": {"id": 1}, "message": "你好"},
        {"sender": "x", "message": "你好", "metadata": "not-an-object"},
        {"sender": "", "message": "你好"},
        {"message_text": "你好"},
    ],
)
def test_wrong_types_get_422(client: TestClient, body: dict[str, Any]) -> None:
    resp = client.post("/webhooks/rest/webhook", json=body)
    assert resp.status_code == 422, resp.text
    assert_error_body(resp.json())
    assert resp.json()["errors"]


def test_oversized_bodies_get_413_never_5xx(client: TestClient) -> None:
    big = "办" * 5000  # 15 KB of UTF-8, over the 8 KB limit of the test server
    for path in ("/webhooks/rest/webhook", "/model/parse", "/webchat/messages"):
        resp = client.post(path, json={"sender": "big", "message": big, "text": big})
        assert resp.status_code == 413, (path, resp.status_code)
        assert_error_body(resp.json())

    # streamed without a Content-Length: caught while reading
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 1024

    resp = client.post("/webhooks/rest/webhook", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert_error_body(resp.json())


def test_unknown_route_and_method_are_bilingual(client: TestClient) -> None:
    for resp in (client.get("/no/such/route"), client.get("/webhooks/rest/webhook")):
        assert 400 <= resp.status_code < 500
        assert_error_body(resp.json())


def test_rate_limit_answers_429_with_retry_after(runtime: Any) -> None:
    app = create_app(runtime, ServerConfig(rate_per_minute=60, rate_burst=3), {"rest": {}})
    with TestClient(app) as c:
        statuses = [c.post("/model/parse", json={"text": "你好"}).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        limited = c.post("/model/parse", json={"text": "你好"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert_error_body(limited.json())
        assert limited.json()["code"] == "rate_limited"
        # health checks are never rate limited (a load balancer polls them)
        assert c.get("/healthz").status_code == 200
        # another client (by session header) has its own bucket
        assert c.post("/model/parse", json={"text": "你好"}, headers={"x-session-id": "other-client"}).status_code == 200


def test_rotating_session_ids_cannot_lift_the_limit(runtime: Any) -> None:
    app = create_app(runtime, ServerConfig(rate_per_minute=60, rate_burst=3), {"rest": {}})
    with TestClient(app) as c:
        # one address, a fresh session id each time: each session's bucket is full, the address's (10x) is not
        statuses = [c.get("/nope", headers={"x-session-id": f"s-{i}"}).status_code for i in range(45)]
    assert statuses.count(404) >= 30 and statuses.count(429) >= 5, statuses
    assert set(statuses) == {404, 429}
