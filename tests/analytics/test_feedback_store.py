"""``FeedbackStore`` on SQLite and PostgreSQL: the rules behind ``POST /webchat/feedback`` and the window counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect

from assistant.errors import ApiError
from assistant.events import BotUttered, UserUttered
from assistant.feedback import FeedbackStore
from assistant.store import SQLTrackerStore

T = 1_790_000_000.0


def said(store: SQLTrackerStore, cid: str, ts: float, channel: str = "webchat") -> None:
    store.append(cid, [UserUttered("你好", {"intent": {"name": "greet"}}, channel, None, {}, timestamp=ts),
                       BotUttered("您好", {}, {"utter_action": "utter_greet"}, timestamp=ts + 1)])


def code_of(call: object) -> tuple[int, str]:
    with pytest.raises(ApiError) as err:
        call()  # type: ignore[operator]
    assert err.value.message_zh and err.value.message_en
    return err.value.status, err.value.code


def test_rules_and_counts(db_url: str) -> None:
    store = SQLTrackerStore(db_url)
    clock = [T + 10]
    feedback = FeedbackStore(store.engine, clock=lambda: clock[0])
    # the table retention and erase work on
    assert {c["name"] for c in inspect(store.engine).get_columns("citizen_feedback")} == {
        "id", "conversation_id", "at", "score", "comment", "channel"}

    assert code_of(lambda: feedback.add("nobody", 5, None, "webchat")) == (404, "feedback.no_conversation")
    said(store, "wx-user", T, channel="wechat")
    assert code_of(lambda: feedback.add("wx-user", 5, None, "webchat")) == (404, "feedback.no_conversation")
    said(store, "web", T)
    for bad in (0, 6, True, 2.5):
        assert code_of(lambda bad=bad: feedback.add("web", bad, None, "webchat")) == (422, "feedback.invalid_score")
    assert code_of(lambda: feedback.add("web", 3, "好" * 501, "webchat")) == (422, "feedback.comment_too_long")

    saved = feedback.add("web", 3, "\x00身份证110101199003077571\x1b ", "webchat")
    assert saved.comment == "身份证1101**********7571" and saved.at == datetime.fromtimestamp(T + 10, UTC)
    assert code_of(lambda: feedback.add("web", 5, None, "webchat")) == (409, "feedback.already_rated")
    said(store, "web", T + 20)
    clock[0] = T + 30
    feedback.add("web", 5, None, "webchat")
    assert [(f.score, f.channel) for f in feedback.for_conversation("web")] == [(3, "webchat"), (5, "webchat")]

    everything = feedback.summary(datetime.fromtimestamp(T, UTC))
    assert everything.to_json() == {"average": 4.0, "count": 2, "distribution": {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}}
    later = feedback.summary(datetime.fromtimestamp(T + 20, UTC), datetime.fromtimestamp(T + 40, UTC))
    assert (later.count, later.average) == (1, 5.0)
