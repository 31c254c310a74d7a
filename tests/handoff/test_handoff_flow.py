"""Handoff end to end over HTTP: the citizen on web chat, staff through the console API, the real engine."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from handoff_helpers import login

from assistant.events import CustomEvent


def sid() -> str:
    return "web" + uuid.uuid4().hex[:16]


def say(client: TestClient, session_id: str, text: str) -> list[dict[str, Any]]:
    r = client.post("/webchat/messages", json={"session_id": session_id, "message_id": uuid.uuid4().hex, "text": text})
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def transitions(runtime: Any, cid: str) -> list[str]:
    tracker = asyncio.run(runtime.agent.tracker(cid))
    return [e.data["transition"] for e in tracker.events if isinstance(e, CustomEvent) and e.name == "handoff"]


def close_all(runtime: Any) -> None:
    """Each test starts from an empty queue."""
    from assistant.handoff.store import CLOSED

    for s in runtime.handoff.store.open_sessions():
        runtime.handoff.store.transition(s.id, (s.state,), CLOSED, outcome="spam")


@pytest.fixture(autouse=True)
def _empty_queue(runtime: Any) -> None:
    close_all(runtime)


@pytest.mark.parametrize("text", ["转人工", "轉人工", "我要找客服", "人工服务！！", "能不能转 人工 啊", "我想和客服聊"])
def test_asking_for_a_person_queues_the_conversation(client: TestClient, runtime: Any, text: str) -> None:
    cid = sid()
    say(client, cid, "你好")
    replies = say(client, cid, text)
    assert any("前面还有 0 位" in m["text"] for m in replies), replies
    info = next(m["custom"]["handoff"] for m in replies if m.get("custom"))
    assert info["position"] == 1 and info["eta_minutes"] >= 1
    assert "/handoff_cancel" in [b["payload"] for m in replies for b in m["buttons"]]
    assert transitions(runtime, cid) == ["queued"]
    assert asyncio.run(runtime.agent.tracker(cid)).paused
    headers = login(client, "agent1")
    r = client.get("/console/api/queue", headers=headers)
    assert r.status_code == 200, r.text
    queue = r.json()["sessions"]
    assert [(s["conversation_id"], s["state"], s["reason"]) for s in queue] == [(cid, "waiting", "request")]


def test_queue_position_urgent_first_and_cancel(client: TestClient, runtime: Any) -> None:
    first, second, urgent = sid(), sid(), sid()
    say(client, first, "转人工")
    replies = say(client, second, "人工客服")
    assert any("前面还有 1 位" in m["text"] for m in replies)
    replies = say(client, urgent, "紧急情况，我要投诉")
    assert any("前面还有 0 位" in m["text"] for m in replies)  # urgent goes first
    headers = login(client, "agent1")
    queue = client.get("/console/api/queue", headers=headers).json()["sessions"]
    assert [s["conversation_id"] for s in queue] == [urgent, first, second]
    assert queue[0]["reason"] == "urgent"
    # while waiting the citizen keeps typing: kept for the agent, the bot stays quiet
    assert say(client, first, "我的社保卡丢了，着急") == []
    # ... unless asked after the wait, or for a person again: then it tells the place in the queue
    for asked in ("人呢？怎么还没人", "转人工"):
        (status,) = say(client, first, asked)
        assert "当前第 2 位" in status["text"], status
        assert "/handoff_cancel" in [b["payload"] for b in status["buttons"]]
    assert transitions(runtime, first) == ["queued"]  # asking again does not queue twice
    # then cancels with the button
    replies = say(client, first, "/handoff_cancel")
    assert any("已取消" in m["text"] for m in replies)
    assert transitions(runtime, first) == ["queued", "cancelled"]
    assert not asyncio.run(runtime.agent.tracker(first)).paused
    queue = client.get("/console/api/queue", headers=headers).json()["sessions"]
    assert [s["conversation_id"] for s in queue] == [urgent, second]
    # back with the bot: it answers again
    assert say(client, first, "你好")


def test_a_new_session_keeps_a_queued_conversation_with_staff(client: TestClient, runtime: Any) -> None:
    cid = sid()
    say(client, cid, "转人工")
    # what the engine runs when the citizen comes back after the session expired
    asyncio.run(runtime.agent.execute(cid, "action_session_start"))
    tracker = asyncio.run(runtime.agent.tracker(cid))
    assert type(tracker.applied_events()[0]).__name__ == "SessionStarted"
    assert tracker.paused
    # kept for the agent; the bot only tells where the citizen stands in the queue
    (status,) = say(client, cid, "还要等多久")
    assert "您已在排队中，当前第 1 位" in status["text"] and status["custom"]["handoff"]["position"] == 1
    assert not any("action_human_handoff" in w for w in runtime.agent.warnings)
