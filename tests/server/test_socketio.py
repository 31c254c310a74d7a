"""Rasa's socket.io protocol against a real uvicorn server, driven by the python-socketio client."""

from __future__ import annotations

import queue
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import socketio
from server_harness import FORM_START, LiveServer, form_answer

from connectors.socketio import rasa_messages


class RasaClient:
    """What rasa-webchat does: connect, ``session_request``, then ``user_uttered`` / ``bot_uttered``."""

    def __init__(self, url: str, transports: list[str]) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        for name in ("session_confirm", "bot_uttered", "error"):
            self.sio.on(name, lambda data=None, _n=name: self.events.put((_n, data)))
        self.sio.connect(url, socketio_path="/socket.io", transports=transports, wait_timeout=10)

    def next(self, timeout: float = 20) -> tuple[str, Any]:
        return self.events.get(timeout=timeout)

    def session(self, session_id: str | None = None) -> str:
        self.sio.emit("session_request", {"session_id": session_id})
        name, data = self.next()
        assert name == "session_confirm"
        return str(data)

    def say(self, text: str, session_id: str, settle: float = 0.3) -> list[dict[str, Any]]:
        self.sio.emit("user_uttered", {"message": text, "session_id": session_id})
        out = [self.next()]
        # a turn may emit several bot_uttered events: collect until the server goes quiet
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            try:
                out.append(self.events.get(timeout=0.05))
                deadline = time.monotonic() + settle
            except queue.Empty:
                pass
        assert all(name == "bot_uttered" for name, _ in out), out
        return [data for _, data in out]

    def close(self) -> None:
        # abort: a polling client would otherwise wait out the server's long-poll (the ping interval, 25 s)
        self.sio.eio.disconnect(abort=True)


@pytest.fixture(params=["websocket", "polling"])
def rasa_client(request: pytest.FixtureRequest, live_server: LiveServer) -> Iterator[RasaClient]:
    client = RasaClient(live_server.url, [request.param])
    try:
        yield client
    finally:
        client.close()


def test_session_request_confirms_a_new_or_the_clients_session(rasa_client: RasaClient) -> None:
    fresh = rasa_client.session(None)
    assert len(fresh) == 32 and fresh != rasa_client.session(None)
    mine = "sio" + uuid.uuid4().hex
    assert rasa_client.session(mine) == mine


def test_user_uttered_gets_bot_uttered_in_rasa_shape(rasa_client: RasaClient, runtime: Any) -> None:
    sid = rasa_client.session("sio" + uuid.uuid4().hex)
    messages = rasa_client.say("你好", sid)
    assert messages and "您好" in messages[0]["text"]
    assert set(messages[0]) <= {"text", "quick_replies", "attachment", "metadata"}
    # the form's confirmation carries buttons: Rasa's quick_replies on the last bubble
    confirm = rasa_client.say(FORM_START, sid)
    for _ in range(10):
        if any(q["title"] == "确认提交" for m in confirm for q in m.get("quick_replies", [])):
            break
        confirm = rasa_client.say(form_answer(confirm[-1]["text"]), sid)
    quick = [q for m in confirm for q in m.get("quick_replies", [])]
    assert quick and all(q["content_type"] == "text" and q["title"] and q["payload"] for q in quick), confirm
    assert "quick_replies" in confirm[-1]


def test_session_persistence_across_reconnects(live_server: LiveServer, runtime: Any) -> None:
    import asyncio

    sid = "sio" + uuid.uuid4().hex
    first = RasaClient(live_server.url, ["websocket"])
    try:
        first.session(sid)
        first.say("你好", sid)
    finally:
        first.close()
    second = RasaClient(live_server.url, ["websocket"])
    try:
        assert second.session(sid) == sid
        second.say("谢谢", sid)
    finally:
        second.close()
    tracker = asyncio.run(runtime.agent.tracker(sid))
    assert [e.text for e in tracker.events if type(e).__name__ == "UserUttered"] == ["你好", "谢谢"]


def test_messages_without_session_or_text_get_errors(live_server: LiveServer) -> None:
    client = RasaClient(live_server.url, ["websocket"])
    try:
        client.sio.emit("user_uttered", {"message": "你好"})
        name, data = client.next()
        assert name == "error" and data["code"] == "no_session" and data["message_zh"] and data["message_en"]
        client.sio.emit("user_uttered", "just a string")
        name, data = client.next()
        assert name == "error" and data["code"] == "invalid_request"
        sid = client.session(None)
        client.sio.emit("user_uttered", {"message": "办" * 5000, "session_id": sid})
        name, data = client.next()
        assert name == "error" and data["code"] == "message_too_long"
    finally:
        client.close()


def test_reply_rendering_follows_rasa_socketio_output() -> None:
    from assistant.agent import BotReply
    from assistant.domain import Button

    reply = BotReply("第一段\n\n第二段", (Button("是", "/affirm"),), ({"title": "规则"},), None, "http://x/a.png")
    assert rasa_messages(reply) == [
        {"text": "第一段"},
        {"text": "第二段", "quick_replies": [{"content_type": "text", "title": "是", "payload": "/affirm"}]},
        {"attachment": {"type": "image", "payload": {"src": "http://x/a.png"}}, "metadata": {"citations": [{"title": "规则"}]}},
    ]


def test_messages_are_rate_limited_per_session(runtime: Any) -> None:
    from server_harness import serve, stop

    from assistant.app import create_app
    from assistant.server_config import ServerConfig

    live = serve(create_app(runtime, ServerConfig(), {"socketio": {"per_minute": 1, "burst": 1}}))
    client = RasaClient(live.url, ["websocket"])
    try:
        sid = client.session(None)
        assert client.say("谢谢", sid)
        client.sio.emit("user_uttered", {"message": "谢谢", "session_id": sid})
        name, data = client.next()
        assert name == "error" and data["code"] == "rate_limited" and data["retry_after"] >= 1
    finally:
        client.close()
        stop(live)


def test_a_refused_turn_is_an_error_event_with_retry_after(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A turn the engine refuses (busy, or moved on another replica) answers with an ``error`` event the client
    can act on, not silence."""
    from server_harness import serve, stop

    from assistant.app import create_app
    from assistant.redis_locks import conversation_busy
    from assistant.server_config import ServerConfig

    async def busy(message: Any) -> Any:
        raise conversation_busy(3)

    live = serve(create_app(runtime, ServerConfig(), {"socketio": {}}))
    client = RasaClient(live.url, ["websocket"])
    try:
        sid = client.session(None)
        monkeypatch.setattr(runtime.agent, "handle", busy)
        client.sio.emit("user_uttered", {"message": "谢谢", "session_id": sid})
        name, data = client.next()
        assert name == "error" and data["code"] == "conversation_busy" and data["retry_after"] == 3
        assert data["message_zh"] and data["message_en"]
    finally:
        client.close()
        stop(live)
