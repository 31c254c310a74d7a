"""Staff take over: claim (one winner), chat both ways, transfer, return to the bot mid-form, close and rate —
the citizen on the web chat WebSocket, two agents on console WebSockets, the real engine in between."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from handoff_helpers import login
from test_handoff_flow import close_all, sid, transitions

from assistant.handoff.store import WAITING, HandoffStore


@pytest.fixture(autouse=True)
def _empty_queue(runtime: Any) -> None:
    close_all(runtime)


def recv_until(ws: Any, pred: Callable[[dict[str, Any]], bool], limit: int = 50) -> dict[str, Any]:
    for _ in range(limit):
        data = ws.receive_json()
        if pred(data):
            return data
    raise AssertionError("expected message never arrived")


def citizen(ws: Any, text: str) -> list[dict[str, Any]]:
    mid = uuid.uuid4().hex
    ws.send_json({"type": "message", "message_id": mid, "text": text})
    return recv_until(ws, lambda d: d.get("type") == "bot" and d.get("reply_to") == mid)["messages"]


def pushed(ws: Any, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    def match(d: dict[str, Any]) -> bool:
        return d.get("type") == "push" and any(pred(m) for m in d["messages"])

    return next(m for m in recv_until(ws, match)["messages"] if pred(m))


def test_staff_flow_end_to_end(client: TestClient, runtime: Any) -> None:
    cid = sid()
    a1, a2, boss = login(client, "agent1"), login(client, "agent2"), login(client, "boss")
    with (
        client.websocket_connect(f"/webchat/ws?session_id={cid}") as web,
        client.websocket_connect("/console/ws", headers=a1) as tab1,
        client.websocket_connect("/console/ws", headers=a1) as tab2,
        client.websocket_connect("/console/ws", headers=a2) as other,
    ):
        for ws in (tab1, tab2, other):
            assert ws.receive_json()["type"] == "hello"
        for ws in (tab1, other):  # these tabs show the conversation; tab2 shows only the queue
            ws.send_json({"type": "watch", "conversation_id": cid})
        # a form half filled, then the citizen asks for a person
        citizen(web, "我要预约换身份证")
        assert asyncio.run(runtime.agent.tracker(cid)).active_loop == "id_card_appointment"
        citizen(web, "张三")
        asked = citizen(web, "转人工")
        assert any("前面还有 0 位" in m["text"] for m in asked)
        for ws in (tab1, tab2, other):  # every tab of every agent hears of it
            added = recv_until(ws, lambda d: d.get("type") == "queue" and d.get("op") == "added")
            assert added["session"]["conversation_id"] == cid
        # the citizen keeps typing while waiting: it reaches the agents, masked
        assert citizen(web, "我身份证号是110101199003071233，电话13912345678") == []
        seen = recv_until(tab1, lambda d: d.get("type") == "message" and d["conversation_id"] == cid)
        assert seen["item"]["text"] == "我身份证号是1101**********1233，电话139****5678"

        # two agents claim at once: exactly one wins
        results: dict[str, int] = {}

        def claim(name: str, headers: dict[str, str]) -> None:
            results[name] = client.post(f"/console/api/conversations/{cid}/claim", headers=headers).status_code

        threads = [threading.Thread(target=claim, args=(n, h)) for n, h in (("a1", a1), ("a2", a2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [200, 409], results
        holder, loser = (a1, a2) if results["a1"] == 200 else (a2, a1)
        holder_name = "王芳" if holder is a1 else "李强"
        greeting = pushed(web, lambda m: bool(m.get("custom")) and m["custom"]["handoff"].get("from") == "agent")
        assert holder_name in greeting["text"]

        # chat both ways
        r = client.post(f"/console/api/conversations/{cid}/messages", headers=holder, json={"text": "您好，请问需要什么帮助？"})
        assert r.status_code == 200 and r.json()["delivery"]["delivered"] is True
        msg = pushed(web, lambda m: m["text"] == "您好，请问需要什么帮助？")
        assert msg["custom"]["handoff"]["agent"] == holder_name
        r = client.post(f"/console/api/conversations/{cid}/messages", headers=loser, json={"text": "抢答"})
        assert r.status_code == 403
        assert citizen(web, "我想问换证要带什么材料") == []
        got = recv_until(tab1, lambda d: d.get("type") == "message" and d["item"]["kind"] == "user"
                         and "材料" in d["item"]["text"])
        assert got["conversation_id"] == cid
        # typing both ways
        web.send_json({"type": "typing"})
        assert recv_until(other, lambda d: d.get("type") == "typing")["conversation_id"] == cid
        assert client.post(f"/console/api/conversations/{cid}/typing", headers=holder, json={"on": True}).status_code == 200
        assert pushed(web, lambda m: bool(m.get("custom")) and m["custom"]["handoff"].get("typing") is True)

        # the conversation view: transcript with bot answers and intents, the form with masked fields
        view = client.get(f"/console/api/conversations/{cid}", headers=holder).json()
        kinds = {x["kind"] for x in view["transcript"]}
        assert {"user", "bot", "agent", "handoff"} <= kinds
        assert {"book_appointment", "request_human"} <= {i["name"] for i in view["intents"]}
        assert view["form"]["name"] == "id_card_appointment" and view["form"]["requested_slot"] == "id_number"
        fields = {f["slot"]: f for f in view["form"]["fields"]}
        assert fields["applicant_name"]["value"] == "张三" and not fields["id_number"]["filled"]
        texts = " ".join(x.get("text", "") for x in view["transcript"])
        assert "110101199003071233" not in texts and "1101**********1233" in texts
        assert "13912345678" not in texts

        # transfer to the other agent with a note
        other_name = "agent2" if holder is a1 else "agent1"
        r = client.post(f"/console/api/conversations/{cid}/transfer", headers=holder,
                        json={"to_agent": other_name, "note": "要问换证材料"})
        assert r.status_code == 200, r.text
        holder, loser = loser, holder
        assert client.post(f"/console/api/conversations/{cid}/messages", headers=loser, json={"text": "x"}).status_code == 403
        # back to the bot: the form resumes at the field it was waiting for
        r = client.post(f"/console/api/conversations/{cid}/return", headers=holder)
        assert r.status_code == 200, r.text
        assert any("身份证号" in (t or "") for t in r.json()["replies"]), r.json()
        back = pushed(web, lambda m: "转回" in m["text"])
        assert back
        answer = citizen(web, "110101199003071233")
        assert answer and ("手机" in answer[-1]["text"] or "电话" in answer[-1]["text"]), answer

        # another round: hand off, claim, close, rate
        citizen(web, "还是转人工吧")
        r = client.post(f"/console/api/conversations/{cid}/claim", headers=boss)
        assert r.status_code == 200
        r = client.post(f"/console/api/conversations/{cid}/close", headers=boss, json={"outcome": "resolved", "note": "已解答"})
        assert r.status_code == 200, r.text
        prompt = pushed(web, lambda m: "评分" in m["text"])
        assert len(prompt["buttons"]) == 5
        thanks = citizen(web, prompt["buttons"][4]["payload"])
        assert any("5 分" in m["text"] for m in thanks)
    assert runtime.handoff.store.latest_for(cid).rating == 5
    assert transitions(runtime, cid) == ["queued", "claimed", "transferred", "returned", "queued", "claimed", "closed", "rated"]


def test_claim_is_atomic_under_threads(runtime: Any) -> None:
    """Eight threads, each with its own connection, claim the same waiting conversation: one wins."""
    store = HandoffStore(runtime.database_url)
    for round_ in range(3):
        session = store.open(f"race-{uuid.uuid4().hex}", "webchat", "request", "general", time.time())
        assert session is not None and session.state == WAITING
        barrier = threading.Barrier(8)
        winners: list[str] = []

        def claim(agent: str, barrier: threading.Barrier, session_id: int, winners: list[str]) -> None:
            barrier.wait()
            if store.claim(session_id, agent, time.time()) is not None:
                winners.append(agent)

        threads = [threading.Thread(target=claim, args=(f"agent{i}", barrier, session.id, winners)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1, (round_, winners)
        assert store.get(session.id).agent_id == winners[0]


def test_one_open_handoff_per_conversation(runtime: Any) -> None:
    store = HandoffStore(runtime.database_url)
    cid = f"once-{uuid.uuid4().hex}"
    assert store.open(cid, "webchat", "request", "general", time.time()) is not None
    assert store.open(cid, "webchat", "request", "general", time.time()) is None


def test_staff_take_over_a_bot_conversation_from_the_live_list(client: TestClient, runtime: Any) -> None:
    cid = sid()
    with client.websocket_connect(f"/webchat/ws?session_id={cid}") as web:
        citizen(web, "社保卡怎么申领？")
        a1 = login(client, "agent1")
        live = client.get("/console/api/live", headers=a1).json()["conversations"]
        assert cid in [c["conversation_id"] for c in live]
        r = client.post(f"/console/api/conversations/{cid}/takeover", headers=a1)
        assert r.status_code == 200, r.text
        assert client.post(f"/console/api/conversations/{cid}/takeover", headers=login(client, "agent2")).status_code == 409
        assert pushed(web, lambda m: "王芳" in m["text"])
        assert citizen(web, "好的谢谢") == []  # the bot stays quiet: a person has it
    assert transitions(runtime, cid) == ["taken_over"]
    assert asyncio.run(runtime.agent.tracker(cid)).paused


def test_notes_are_private_and_transfer_to_a_team_requeues(client: TestClient, runtime: Any) -> None:
    cid = sid()
    a1 = login(client, "agent1")
    with client.websocket_connect(f"/webchat/ws?session_id={cid}") as web:
        citizen(web, "人工服务")
        assert client.post(f"/console/api/conversations/{cid}/claim", headers=a1).status_code == 200
        assert client.post(f"/console/api/conversations/{cid}/notes", headers=a1, json={"text": "来电号码13912345678"}).status_code == 200
        r = client.post(f"/console/api/conversations/{cid}/transfer", headers=a1, json={"to_team": "social_security", "note": "社保问题"})
        assert r.status_code == 200, r.text
        assert r.json()["session"]["state"] == "waiting" and r.json()["session"]["team"] == "social_security"
        assert pushed(web, lambda m: "社保组" in m["text"])
    history = client.get(f"/webchat/history?session_id={cid}").json()["messages"]
    assert all("13912345678" not in m["text"] and "来电号码" not in m["text"] for m in history)
    view = client.get(f"/console/api/conversations/{cid}", headers=a1).json()
    notes = [x for x in view["transcript"] if x["kind"] == "note"]
    assert [n["text"] for n in notes] == ["来电号码139****5678", "社保问题"]
    assert client.post(f"/console/api/conversations/{cid}/transfer", headers=a1, json={"to_team": "nope"}).status_code in (403, 409, 422)
    assert client.post(f"/console/api/conversations/{cid}/claim", headers=login(client, "agent3")).status_code == 200
    assert asyncio.run(runtime.agent.tracker(cid)).paused


def test_waiting_citizens_hear_their_new_place_when_the_queue_moves(client: TestClient, runtime: Any) -> None:
    first, second = sid(), sid()
    a1 = login(client, "agent1")
    with (
        client.websocket_connect(f"/webchat/ws?session_id={first}") as one,
        client.websocket_connect(f"/webchat/ws?session_id={second}") as two,
    ):
        citizen(one, "转人工")
        told = citizen(two, "转人工")
        assert told[-1]["custom"]["handoff"]["position"] == 2
        assert client.post(f"/console/api/conversations/{first}/claim", headers=a1).status_code == 200
        update = pushed(two, lambda m: bool(m.get("custom")) and m["custom"]["handoff"].get("state") == "waiting")
        assert update["text"] == "" and update["custom"]["handoff"]["position"] == 1
        assert update["custom"]["handoff"]["eta_minutes"] >= 1
        citizen(two, "/handoff_cancel")


def test_a_conversation_with_an_agent_is_not_broadcast_to_every_console(client: TestClient, runtime: Any) -> None:
    cid, later = sid(), sid()
    a1, a3 = login(client, "agent1"), login(client, "agent3")
    with (
        client.websocket_connect(f"/webchat/ws?session_id={cid}") as web,
        client.websocket_connect("/console/ws", headers=a1) as holder,
        client.websocket_connect("/console/ws", headers=a3) as bystander,
    ):
        holder.receive_json(), bystander.receive_json()
        citizen(web, "转人工")
        assert client.post(f"/console/api/conversations/{cid}/claim", headers=a1).status_code == 200
        citizen(web, "私事：我的电话13912345678")
        got = recv_until(holder, lambda d: d.get("type") == "message" and d["item"]["kind"] == "user"
                         and d["conversation_id"] == cid and "私事" in d["item"]["text"])
        assert got["agent_id"] == "agent1"
        say_ws = client.post("/webchat/messages", json={"session_id": later, "message_id": "m1", "text": "转人工"})
        assert say_ws.status_code == 200
        # the bystander's next conversation traffic is the new queue entry, not the private exchange
        before: list[dict[str, Any]] = []

        def until_later(d: dict[str, Any]) -> bool:
            before.append(d)
            return d.get("type") == "queue" and d["session"]["conversation_id"] == later

        recv_until(bystander, until_later)
        leaked = [d for d in before if d.get("type") == "message" and d["conversation_id"] == cid
                  and d.get("state") != "waiting"]
        assert leaked == [] and len(before) >= 3  # queue added + claimed for cid, then the new entry
