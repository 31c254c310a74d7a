"""Two real server processes (``gov-assistant serve``) on one PostgreSQL database and one Redis.

(a) An agent logged in on replica A (console WebSocket on A) sees, live, a citizen who writes to replica B (web-chat
WebSocket on B) ask for a human and then write again; the agent's greeting and reply, sent through A, reach the
citizen's socket on B. (b) A document added and published through the editor API on A is answered by B within
seconds, with B's own lazy reload switched off (``knowledge.reload_check_seconds: 0``): only the ``kb.live``
message (or the 10 s poll) can have loaded it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from replicas import Replica, shared_project, start_replica
from services import database_or_skip, redis_test_url
from websockets.sync.client import ClientConnection, connect

from assistant.accounts import Accounts
from connectors.backoffice_demo import serve_in_thread

PASSWORD = "correct-horse-battery"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A PostgreSQL database of this module's own (the replicas are shared by its tests; ``pg_url`` is per test)."""
    with database_or_skip("test_pubsub") as url:
        yield url


@pytest.fixture(scope="module")
def replicas(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    redis_url = redis_test_url()
    with serve_in_thread() as backoffice:
        project = shared_project(
            tmp_path_factory.mktemp("pubsub-replicas"),
            database_url=database_url,
            backoffice_url=backoffice.url,
            redis_url=redis_url,
            extra_config={
                "handoff": {"service_hours": {"always_open": True}, "console": {"cookie_secure": False}},
                "channels": {"rest": {}, "webchat": {}},
            },
        )
        _set_knowledge(project, reload_check_seconds=0)
        a = start_replica(project)  # seeds and publishes the knowledge base
        b = None
        try:
            b = start_replica(project)
            accounts = Accounts(database_url)
            accounts.create_user("agent1", PASSWORD, "agent", "王芳", "general")
            accounts.create_user("boss", PASSWORD, "admin", "张主任", None)
            accounts.engine.dispose()
            yield a, b
        finally:
            for r in (b, a):
                if r is not None:
                    r.stop()


def _set_knowledge(project: Path, **values: Any) -> None:
    import yaml

    path = project / "config.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["knowledge"] = {**(config.get("knowledge") or {}), **values}
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


def login(replica: Replica, username: str) -> str:
    r = httpx.post(f"{replica.url}/console/api/login", json={"username": username, "password": PASSWORD}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def ws_url(replica: Replica, path: str) -> str:
    return replica.url.replace("http://", "ws://") + path


def wait_for(ws: ClientConnection, match: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
    """The first message on ``ws`` that ``match``es (others are skipped), or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            raw = ws.recv(timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        message = json.loads(raw)
        if match(message):
            return message
        seen.append(message)
    raise AssertionError(f"nothing matching within {timeout} s; got {seen}")


def pushed_texts(message: dict[str, Any]) -> list[str]:
    return [m.get("text", "") for m in message.get("messages", [])] if message.get("type") == "push" else []


def test_agent_on_one_replica_and_citizen_on_the_other_see_each_other_live(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    token = login(a, "agent1")
    bearer = {"Authorization": f"Bearer {token}"}
    session = f"citizen-{uuid.uuid4().hex[:12]}"
    for r in (a, b):  # a first turn loads lazily-built parts; the latencies below are the pub/sub's
        warm = httpx.post(f"{r.url}/webchat/messages", timeout=60,
                          json={"session_id": f"warm-{uuid.uuid4().hex[:12]}", "message_id": "w1", "text": "你好"})
        assert warm.status_code == 200, warm.text
    second = f"citizen-{uuid.uuid4().hex[:12]}"
    with connect(ws_url(a, "/console/ws"), additional_headers=bearer) as console, \
            connect(ws_url(b, f"/webchat/ws?session_id={session}")) as citizen, \
            connect(ws_url(b, f"/webchat/ws?session_id={second}")) as waiting:
        wait_for(console, lambda m: m.get("type") == "hello")
        time.sleep(0.5)  # both replicas' listeners are subscribed (their first socket started them)

        # the citizen, on B, asks for a human: the agent's console on A hears the queue change
        started = time.monotonic()
        citizen.send(json.dumps({"message_id": "m1", "text": "转人工"}))
        added = wait_for(console, lambda m: m.get("type") == "queue" and m.get("op") == "added"
                         and m["session"]["conversation_id"] == session)
        queue_latency = time.monotonic() - started
        wait_for(citizen, lambda m: m.get("type") == "bot" and m.get("reply_to") == "m1")
        assert added["session"]["state"] == "waiting"
        # a second citizen on B queues behind the first
        waiting.send(json.dumps({"message_id": "q1", "text": "转人工"}))
        wait_for(console, lambda m: m.get("type") == "queue" and m.get("op") == "added"
                 and m["session"]["conversation_id"] == second)
        wait_for(waiting, lambda m: m.get("type") == "bot" and m.get("reply_to") == "q1")

        # the agent claims on A; the greeting reaches the citizen's socket on B
        r = httpx.post(f"{a.url}/console/api/conversations/{session}/claim", headers=bearer, timeout=20)
        assert r.status_code == 200, r.text
        assert r.json()["delivery"]["delivered"] is True
        greeting = wait_for(citizen, lambda m: m.get("type") == "push"
                            and any((x.get("custom") or {}).get("handoff", {}).get("from") == "agent"
                                    for x in m["messages"]))
        assert "王芳" in "".join(pushed_texts(greeting))
        # A's queue-position round reaches the second citizen's socket on B: now first in line
        moved = wait_for(waiting, lambda m: m.get("type") == "push" and any(
            (x.get("custom") or {}).get("handoff", {}).get("position") == 1 for x in m["messages"]))
        assert moved["messages"][0]["custom"]["handoff"]["state"] == "waiting"

        # the citizen writes again on B: the agent's console on A shows it live (masked)
        console.send(json.dumps({"type": "watch", "conversation_id": session}))
        started = time.monotonic()
        citizen.send(json.dumps({"message_id": "m2", "text": "我的身份证丢了，号码110101199003077571"}))
        relayed = wait_for(console, lambda m: m.get("type") == "message" and m.get("conversation_id") == session
                           and m["item"]["kind"] == "user")
        message_latency = time.monotonic() - started
        assert "110101199003077571" not in relayed["item"]["text"]  # masked in the console view
        assert "身份证丢了" in relayed["item"]["text"]

        # the agent's reply, sent through A, reaches the citizen's socket on B
        started = time.monotonic()
        r = httpx.post(f"{a.url}/console/api/conversations/{session}/messages", headers=bearer,
                       json={"text": "请带户口本到派出所办理挂失补领"}, timeout=20)
        assert r.status_code == 200, r.text
        assert r.json()["delivery"]["delivered"] is True
        reply = wait_for(citizen, lambda m: "请带户口本到派出所办理挂失补领" in pushed_texts(m))
        reply_latency = time.monotonic() - started
        assert reply["messages"][0]["custom"]["handoff"]["agent"] == "王芳"
        print(f"\nacross replicas: queue {queue_latency * 1000:.0f} ms, citizen->console {message_latency * 1000:.0f} ms, "
              f"agent->citizen {reply_latency * 1000:.0f} ms")

    # the citizen left: a reply is kept in the conversation, reported as not delivered
    r = httpx.post(f"{a.url}/console/api/conversations/{session}/messages", headers=bearer,
                   json={"text": "您还在吗？"}, timeout=20)
    assert r.status_code == 200 and r.json()["delivery"]["delivered"] is False


def test_a_publish_on_one_replica_is_served_by_the_other_within_seconds(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    bearer = {"Authorization": f"Bearer {login(a, 'boss')}"}
    question = {"query": "云州市犬只登记去哪里办理"}
    before = httpx.post(f"{b.url}/api/kb/search", json=question, headers=bearer, timeout=30)
    assert before.status_code == 200, before.text
    old_version = before.json()["live_version"]

    doc = {"title": "云州市犬只登记办理指南",
           "body": "# 犬只登记\n\n云州市居民饲养犬只，应当在取得犬只后三十日内到居住地派出所犬类管理窗口办理犬只登记，"
                   "携带身份证、犬只免疫证明和犬只照片两张。登记费用为每只犬五十元。"}
    r = httpx.post(f"{a.url}/api/kb/documents", json=doc, headers=bearer, timeout=30)
    assert r.status_code in (200, 201), r.text
    r = httpx.post(f"{a.url}/api/kb/publish", headers=bearer, timeout=300)
    assert r.status_code == 200, r.text
    version = r.json()["id"]
    assert version != old_version
    published = time.monotonic()

    served = None
    while time.monotonic() - published < 15:
        found = httpx.post(f"{b.url}/api/kb/search", json=question, headers=bearer, timeout=30).json()
        if found["live_version"] == version:
            served = time.monotonic() - published
            break
        time.sleep(0.2)
    assert served is not None, f"B still serves {found['live_version']}:\n{b.log()[-3000:]}"
    titles = [h["citation"]["title"] for h in found["hits"]]
    assert "云州市犬只登记办理指南" in titles
    print(f"\npublish on A served by B after {served * 1000:.0f} ms")
    assert served < 8.0
    assert f"now serving knowledge index version {version}" in b.log()
