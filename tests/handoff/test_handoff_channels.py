"""Handoff on WeChat through the (fake) customer-service API with its 48-hour window, the out-of-hours ticket,
and the fallback ladder running out."""

from __future__ import annotations

import asyncio
import random
import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from handoff_helpers import FakeWeChat, login, wechat_post
from test_handoff_flow import close_all, say, sid, transitions

from assistant.handoff.config import ServiceHoursConfig
from assistant.handoff.hours import ServiceHours


@pytest.fixture(autouse=True)
def _empty_queue(runtime: Any) -> None:
    close_all(runtime)


def msg_id() -> int:
    return random.randint(10**12, 10**13)


def test_wechat_handoff_and_the_48_hour_window(client: TestClient, runtime: Any, wechat_fake: FakeWeChat) -> None:
    openid = f"oTest{random.randint(10**6, 10**7)}"
    cid = f"wechat:{openid}"
    wechat_fake.citizen_wrote(openid)
    r = wechat_post(client, openid, "转人工", msg_id())
    assert r.status_code == 200 and "前面还有 0 位" in r.text
    agent = login(client, "agent1")
    assert client.post(f"/console/api/conversations/{cid}/claim", headers=agent).status_code == 200
    assert any(m["touser"] == openid and "王芳" in m["text"]["content"] for m in wechat_fake.sent)
    r = client.post(f"/console/api/conversations/{cid}/messages", headers=agent, json={"text": "请问您要办理什么业务？"})
    assert r.json()["delivery"]["delivered"] is True
    assert wechat_fake.sent[-1] == {"touser": openid, "msgtype": "text", "text": {"content": "请问您要办理什么业务？"}}
    # the citizen wrote last 49 hours ago: WeChat refuses, the agent is told, nothing is lost
    wechat_fake.citizen_wrote(openid, time.time() - 49 * 3600)
    r = client.post(f"/console/api/conversations/{cid}/messages", headers=agent, json={"text": "材料清单已发您，请查收"})
    delivery = r.json()["delivery"]
    assert delivery["delivered"] is False and delivery["outside_window"] is True
    assert "48" in delivery["message_zh"] and "48-hour" in delivery["message_en"]
    assert wechat_fake.refused[-1]["text"]["content"] == "材料清单已发您，请查收"
    view = client.get(f"/console/api/conversations/{cid}", headers=agent).json()
    reports = [x for x in view["transcript"] if x["kind"] == "delivery"]
    assert reports[-1]["status"] == "outside_window" and reports[-1]["text"] == "材料清单已发您，请查收"
    # the citizen writes again: the window is open, the kept message goes out
    wechat_fake.citizen_wrote(openid)
    r = wechat_post(client, openid, "在吗？", msg_id())
    assert r.status_code == 200
    assert wechat_fake.sent[-1]["text"]["content"] == "材料清单已发您，请查收"
    view = client.get(f"/console/api/conversations/{cid}", headers=agent).json()
    assert [x["status"] for x in view["transcript"] if x["kind"] == "delivery"][-1] == "delivered"
    # closing asks for a rating in plain text: WeChat has no buttons, "5" answers it
    assert client.post(f"/console/api/conversations/{cid}/close", headers=agent, json={"outcome": "resolved"}).status_code == 200
    assert "评分" in wechat_fake.sent[-1]["text"]["content"]
    r = wechat_post(client, openid, "５分", msg_id())
    assert "感谢您的评价（5 分）" in r.text
    assert runtime.handoff.store.latest_for(cid).rating == 5


def test_out_of_hours_message_becomes_a_ticket(client: TestClient, runtime: Any) -> None:
    deps = runtime.handoff.deps
    saved = deps.hours
    deps.hours = ServiceHours(ServiceHoursConfig(weekly={"mon": ["09:00-17:00"]}, follow_holidays=False,
                                                 closed_dates=[]))
    try:
        cid = sid()
        replies = say(client, cid, "转人工")
        if "非工作时间" not in replies[0]["text"]:  # it happens to be Monday 09:00-17:00 in Shanghai
            deps.hours = ServiceHours(ServiceHoursConfig(weekly={}, follow_holidays=False))
            cid = sid()
            replies = say(client, cid, "转人工")
        assert "非工作时间" in replies[0]["text"] and "人工服务时间" in replies[0]["text"]
        assert [b["payload"] for b in replies[0]["buttons"]] == ["/handoff_leave_message", "/deny"]
        assert not asyncio.run(runtime.agent.tracker(cid)).paused
        assert "留言" in say(client, cid, "/handoff_leave_message")[0]["text"]
        replies = say(client, cid, "社保卡丢了，上班后请回电 13912345678")
        ref = re.search(r"LY\d{13}", replies[0]["text"])
        assert ref, replies
        assert transitions(runtime, cid) == ["offered_message", "awaiting_message", "ticket"]
        ticket = runtime.handoff.store.ticket(ref.group())
        assert ticket.conversation_id == cid and "13912345678" in ticket.text
        agent = login(client, "agent1")
        listed = client.get("/console/api/tickets", headers=agent).json()["tickets"]
        mine = next(t for t in listed if t["ref"] == ref.group())
        assert "139****5678" in mine["text"] and "13912345678" not in mine["text"]
        assert client.post(f"/console/api/tickets/{ref.group()}/handled", headers=agent).status_code == 200
        assert client.post(f"/console/api/tickets/{ref.group()}/handled", headers=agent).status_code == 409
        # the next message is an ordinary question again
        assert transitions(runtime, cid)[-1] == "ticket"
        assert runtime.handoff.store.open_for(cid) is None
    finally:
        deps.hours = saved


def test_fallback_ladder_running_out_hands_off(client: TestClient, runtime: Any) -> None:
    cid = sid()
    # the NLU's verdict on messages it cannot place (a payload, so the test does not depend on a model's guess)
    gibberish = ["/nlu_fallback", "/nlu_fallback", "/nlu_fallback"]
    replies = []
    for text in gibberish:
        replies = say(client, cid, text)
        if runtime.handoff.store.open_for(cid) is not None:
            break
    session = runtime.handoff.store.open_for(cid)
    assert session is not None, replies
    assert session.reason == "fallback"
    tracker = asyncio.run(runtime.agent.tracker(cid))
    actions = [getattr(e, "action_name", None) for e in tracker.events]
    assert "action_offer_human" in actions and actions.index("action_offer_human") < actions.index("action_handoff")


def test_accepting_the_offered_human(client: TestClient, runtime: Any) -> None:
    cid = sid()
    for text in ("/nlu_fallback", "/nlu_fallback"):
        replies = say(client, cid, text)
    offer = [m for m in replies if any(b["payload"] == "/request_human" for b in m["buttons"])]
    assert offer, replies
    say(client, cid, "/request_human")
    assert runtime.handoff.store.open_for(cid) is not None
