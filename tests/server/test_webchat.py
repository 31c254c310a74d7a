"""The web chat channel over REST and WebSocket: typing indicator, history, exactly-once message ids, limits."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_harness import assert_error_body


def session() -> str:
    return "web" + uuid.uuid4().hex


def post(client: TestClient, session_id: str, text: str, message_id: str | None = None) -> Any:
    return client.post(
        "/webchat/messages",
        json={"session_id": session_id, "message_id": message_id or uuid.uuid4().hex, "text": text},
    )


def user_texts(client: TestClient, session_id: str) -> list[str]:
    history = client.get("/webchat/history", params={"session_id": session_id}).json()["messages"]
    return [m["text"] for m in history if m["role"] == "user"]


def test_rest_message_then_history_after_reload(client: TestClient) -> None:
    sid = session()
    first = post(client, sid, "你好", "m-1").json()
    assert first["reply_to"] == "m-1" and first["duplicate"] is False
    assert first["messages"] and "您好" in first["messages"][0]["text"]
    assert set(first["messages"][0]) >= {"role", "text", "buttons", "citations"}
    post(client, sid, "市民中心开放时间", "m-2")
    # a reload asks for the history: both turns, in order, with the message ids the widget uses to dedupe
    history = client.get("/webchat/history", params={"session_id": sid}).json()
    roles = [m["role"] for m in history["messages"]]
    assert roles[0] == "user" and roles.count("user") == 2 and "bot" in roles
    users = [m for m in history["messages"] if m["role"] == "user"]
    assert [(u["text"], u["message_id"]) for u in users] == [("你好", "m-1"), ("市民中心开放时间", "m-2")]
    bots = [m for m in history["messages"] if m["role"] == "bot"]
    assert any(b["citations"] for b in bots), bots


def test_same_message_id_is_processed_once(client: TestClient, runtime: Any) -> None:
    sid = session()
    first = post(client, sid, "谢谢", "dup-1").json()
    again = post(client, sid, "谢谢", "dup-1").json()
    assert again["duplicate"] is True and first["duplicate"] is False
    assert [m["text"] for m in again["messages"]] == [m["text"] for m in first["messages"]]
    assert user_texts(client, sid) == ["谢谢"]


def test_control_characters_are_stripped(client: TestClient) -> None:
    sid = session()
    resp = post(client, sid, "\x01你\x07好\x1b[31m\x7f")
    assert resp.status_code == 200
    assert user_texts(client, sid) == ["你好[31m"]
    # NUL cannot be stored (PostgreSQL): every JSON route refuses it, 400 (assistant.limits.JsonTextGuard)
    assert post(client, sid, "\x00你好").status_code == 400
    only_control = post(client, sid, "\x03\x01\x02")
    assert only_control.status_code == 422
    assert_error_body(only_control.json())


def test_ten_kilobyte_message_is_rejected_with_413(client: TestClient) -> None:
    sid = session()
    resp = post(client, sid, "a" * 10_000)
    assert resp.status_code == 413
    assert_error_body(resp.json())
    # under the body limit but over the channel's 2000 characters
    resp = post(client, sid, "办" * 2001)
    assert resp.status_code == 413 and resp.json()["code"] == "message_too_long"
    assert user_texts(client, sid) == []


@pytest.mark.parametrize(
    "body",
    [
        {"session_id": "short", "message_id": "m", "text": "你好"},  # session id too short
        {"session_id": "web../../etc/passwd", "message_id": "m", "text": "你好"},
        {"session_id": "web12345678", "message_id": "", "text": "你好"},
        {"session_id": "web12345678", "message_id": "m", "text": 5},
    ],
)
def test_bad_webchat_fields_get_422(client: TestClient, body: dict[str, Any]) -> None:
    resp = client.post("/webchat/messages", json=body)
    assert resp.status_code == 422
    assert_error_body(resp.json())


def test_websocket_typing_then_bot_then_duplicate(client: TestClient) -> None:
    sid = session()
    with client.websocket_connect(f"/webchat/ws?session_id={sid}") as ws:
        ws.send_json({"type": "ping"})
        assert ws.receive_json() == {"type": "pong"}
        ws.send_json({"type": "message", "message_id": "w-1", "text": "你好"})
        typing = ws.receive_json()
        assert typing == {"type": "typing", "reply_to": "w-1"}
        bot = ws.receive_json()
        assert bot["type"] == "bot" and bot["reply_to"] == "w-1" and bot["duplicate"] is False
        assert "您好" in bot["messages"][0]["text"]
        # a reconnecting widget re-sends an unacknowledged message: answered from the first processing
        ws.send_json({"type": "message", "message_id": "w-1", "text": "你好"})
        assert ws.receive_json()["type"] == "typing"
        again = ws.receive_json()
        assert again["duplicate"] is True and again["messages"] == bot["messages"]
        ws.send_text("{not json")
        err = ws.receive_json()
        assert err["type"] == "error"
        assert_error_body(err)
        ws.send_json({"type": "message", "message_id": "w-2", "text": "x" * 10_240})
        err = ws.receive_json()
        assert err["type"] == "error" and err["code"] in ("payload_too_large", "message_too_long")
        assert_error_body(err)
    assert user_texts(client, sid) == ["你好"]
    # the same conversation continues over REST (the widget's fallback) and sees the socket's history
    assert post(client, sid, "谢谢", "w-3").json()["messages"]
    assert user_texts(client, sid) == ["你好", "谢谢"]


def test_websocket_needs_a_valid_session(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/webchat/ws?session_id=x") as ws:
        ws.receive_json()


def test_widget_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/webchat/widget.js" in page.text and "<script>alert" not in page.text
    js = client.get("/webchat/widget.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "textContent" in js.text and "innerHTML" not in js.text
    assert client.get("/webchat/widget.css").status_code == 200


def test_websocket_messages_have_their_own_rate_limit(runtime: Any) -> None:
    from assistant.app import create_app
    from assistant.server_config import ServerConfig

    app = create_app(runtime, ServerConfig(), {"webchat": {"ws_per_minute": 6, "ws_burst": 2}})
    sid = session()
    with TestClient(app) as c, c.websocket_connect(f"/webchat/ws?session_id={sid}") as ws:
        kinds = []
        for i in range(4):
            ws.send_json({"type": "message", "message_id": f"r-{i}", "text": "谢谢"})
            first = ws.receive_json()
            if first["type"] == "typing":
                first = ws.receive_json()
            kinds.append(first["type"] if first["type"] != "error" else first["code"])
        assert kinds == ["bot", "bot", "rate_limited", "rate_limited"]
        assert first["retry_after"] >= 1 and first["message_zh"] and first["message_en"]
    assert user_texts(c, sid) == ["谢谢", "谢谢"]


def test_a_retryable_refusal_over_the_socket_says_when_to_send_again(runtime: Any, monkeypatch: Any) -> None:
    """The engine refuses a turn it cannot run now (the conversation is busy, or moved on another replica): the
    frame carries ``retry_after`` so the widget keeps the message and sends it again, rather than dropping it."""
    from assistant.app import create_app
    from assistant.redis_locks import conversation_busy
    from assistant.server_config import ServerConfig

    real = runtime.agent.handle
    refusals = iter([conversation_busy(2)])

    async def busy_once(message: Any) -> Any:
        refusal = next(refusals, None)
        if refusal is not None:
            raise refusal
        return await real(message)

    monkeypatch.setattr(runtime.agent, "handle", busy_once)
    app = create_app(runtime, ServerConfig(), {"webchat": {}})
    sid = session()
    with TestClient(app) as c, c.websocket_connect(f"/webchat/ws?session_id={sid}") as ws:
        ws.send_json({"type": "message", "message_id": "b-1", "text": "谢谢"})
        frame = ws.receive_json()
        if frame["type"] == "typing":
            frame = ws.receive_json()
        assert frame["type"] == "error" and frame["code"] == "conversation_busy"
        assert frame["retry_after"] == 2 and frame["reply_to"] == "b-1" and frame["message_en"]
        # sent again with the same id, it is answered
        ws.send_json({"type": "message", "message_id": "b-1", "text": "谢谢"})
        frame = ws.receive_json()
        if frame["type"] == "typing":
            frame = ws.receive_json()
        assert frame["type"] == "bot" and frame["reply_to"] == "b-1"
    assert user_texts(c, sid) == ["谢谢"]


def test_a_refusal_that_retrying_cannot_fix_has_no_retry_after(client: TestClient) -> None:
    with client.websocket_connect(f"/webchat/ws?session_id={session()}") as ws:
        ws.send_json({"type": "message", "message_id": "e-1", "text": "   "})
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["code"] == "empty_message" and "retry_after" not in frame
