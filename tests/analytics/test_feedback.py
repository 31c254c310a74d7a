"""``POST /webchat/feedback``: validation, a sender rates only its own web chat conversation, once per stretch of
conversation, comments masked, a closed handoff episode rated too, and the rate limit of every route."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from analytics_reference import STAFF, bearer, webchat
from fastapi.testclient import TestClient
from sqlalchemy import select

from assistant.app import create_app
from assistant.feedback import FeedbackRow
from assistant.server_config import ServerConfig


def _sid() -> str:
    return f"fb{uuid.uuid4().hex[:16]}"


def rate(client: Any, sid: str, score: Any, comment: Any = None, header: str | None = "same", **extra: Any) -> Any:
    body = {"sender_id": sid, "score": score, **({"comment": comment} if comment is not None else {}), **extra}
    headers = {"X-Session-Id": sid if header == "same" else header} if header is not None else {}
    return client.post("/webchat/feedback", json=body, headers=headers)


def assert_bilingual(r: Any, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert {"code", "message_zh", "message_en"} <= body.keys(), body
    if code is not None:
        assert body["code"] == code, body


def rows(runtime: Any, sid: str) -> list[Any]:
    with runtime.feedback.engine.connect() as conn:
        return conn.execute(select(FeedbackRow).where(FeedbackRow.conversation_id == sid)).all()


@pytest.mark.parametrize(
    "body",
    [
        {"score": 0}, {"score": 6}, {"score": "5"}, {"score": 4.5}, {"score": True}, {"score": None}, {},
        {"score": 3, "comment": "很" * 501}, {"score": 3, "comment": 5}, {"score": 3, "extra": 1},
    ],
)
def test_malformed_ratings_are_bilingual_422(client: Any, body: dict[str, Any]) -> None:
    sid = _sid()
    r = client.post("/webchat/feedback", json={"sender_id": sid, **body}, headers={"X-Session-Id": sid})
    assert_bilingual(r, 422)


def test_sender_must_be_a_valid_session_id(client: Any) -> None:
    assert_bilingual(rate(client, "bad id!", 5, header="bad id!"), 422)
    assert_bilingual(client.post("/webchat/feedback", content=b"{not json", headers={"Content-Type": "application/json"}), 422)


def test_rate_only_your_own_webchat_conversation(client: Any, runtime: Any) -> None:
    sid = _sid()
    # nothing said yet: nothing to rate
    assert_bilingual(rate(client, sid, 5), 404, "feedback.no_conversation")
    webchat(client, sid, "你好", 1)
    # another session's header, or none: refused
    assert_bilingual(rate(client, sid, 1, header=_sid()), 403, "feedback.not_your_conversation")
    assert_bilingual(rate(client, sid, 1, header=None), 403, "feedback.not_your_conversation")
    # a conversation of another channel cannot be rated through the web chat
    rest = _sid()
    assert client.post("/webhooks/rest/webhook", json={"sender": rest, "message": "你好"}).status_code == 200
    assert_bilingual(rate(client, rest, 1), 404, "feedback.no_conversation")
    assert rows(runtime, rest) == []
    assert rows(runtime, sid) == []


def test_rating_is_stored_masked_and_once_per_stretch(client: Any, runtime: Any) -> None:
    sid = _sid()
    webchat(client, sid, "身份证过期了怎么换领？", 1)
    comment = "  回答很清楚，我的电话13912345678，身份证110101199003077571\x07  "
    r = rate(client, sid, 4, comment)
    assert r.status_code == 201, r.text
    assert r.json()["score"] == 4 and r.json()["message_zh"]
    [row] = rows(runtime, sid)
    assert (row.conversation_id, row.score, row.channel) == (sid, 4, "webchat")
    assert row.comment == "回答很清楚，我的电话139****5678，身份证1101**********7571"
    assert row.at.tzinfo is not None and abs(row.at.timestamp() - __import__("time").time()) < 60
    # again without having said anything since: refused
    assert_bilingual(rate(client, sid, 1), 409, "feedback.already_rated")
    # a new matter may be rated again; an empty comment is no comment
    webchat(client, sid, "那要带什么材料？", 2)
    assert rate(client, sid, 5, "   ").status_code == 201
    assert [(x.score, x.comment) for x in rows(runtime, sid)] == [(4, row.comment), (5, None)]


def test_widget_rating_after_a_handoff_rates_the_episode_and_counts_once(client: Any, runtime: Any) -> None:
    sid = _sid()
    admin = bearer(runtime, STAFF["admin"])
    before = client.get("/api/dashboard", params={"days": 1}, headers=admin).json()["satisfaction"]
    webchat(client, sid, "转人工", 1)
    agent = bearer(runtime, STAFF["agent"])
    assert client.post(f"/console/api/conversations/{sid}/claim", headers=agent).status_code == 200
    r = client.post(f"/console/api/conversations/{sid}/close", json={"outcome": "resolved"}, headers=agent)
    assert r.status_code == 200, r.text
    assert rate(client, sid, 2, "等太久了").status_code == 201
    assert runtime.handoff.store.latest_for(sid).rating == 2
    after = client.get("/api/dashboard", params={"days": 1}, headers=admin).json()["satisfaction"]
    assert after["count"] == before["count"] + 1
    assert after["distribution"]["2"] == before["distribution"]["2"] + 1


def test_feedback_is_rate_limited_like_every_route(runtime: Any) -> None:
    strict = create_app(runtime, ServerConfig(rate_per_minute=1, rate_burst=2), {"webchat": {}})
    sid = _sid()
    with TestClient(strict, raise_server_exceptions=False) as c:
        codes = [rate(c, sid, 5).status_code for _ in range(4)]
        assert codes[-1] == 429, codes
        assert_bilingual(rate(c, sid, 5), 429, "rate_limited")
