"""Numbered choices (``assistant.choices``): what counts as picking a number, and which buttons it picks from."""

from __future__ import annotations

import pytest

from assistant.choices import latest_buttons, numbered_choice, resolve_choice
from assistant.events import ActionExecuted, BotUttered, CustomEvent, SessionStarted, UserUttered
from assistant.tracker import ACTION_LISTEN, Tracker

YES_NO = {"buttons": [{"title": "确认提交", "payload": "/affirm"}, {"title": "修改信息", "payload": "/deny"}]}


@pytest.mark.parametrize(
    ("text", "number"),
    [("1", 1), (" 2 ", 2), ("２", 2), ("第一个", 1), ("选2", 2), ("选择 3", 3), ("3.", 3), ("二", 2), ("第3项", 3), ("第一", 1)],
)
def test_a_bare_number_is_a_choice(text: str, number: int) -> None:
    assert numbered_choice(text) == number


@pytest.mark.parametrize("text", ["12", "0", "1个人", "13912345678", "我选1号窗口办", "一下", "", "一楼"])
def test_other_answers_are_not_choices(text: str) -> None:
    assert numbered_choice(text) is None


def conversation(*events: object) -> Tracker:
    return Tracker("c", (SessionStarted(), UserUttered("确认吧", {}), *events))  # type: ignore[arg-type]


def test_the_latest_message_with_buttons_is_the_one_picked_from() -> None:
    tracker = conversation(BotUttered("您是不是想问：", {"buttons": [{"title": "甲", "payload": "甲"}]}),
                           BotUttered("请核对……确认提交吗？", YES_NO), ActionExecuted(ACTION_LISTEN))
    assert resolve_choice(tracker, "1") == "/affirm" and resolve_choice(tracker, "2") == "/deny"
    assert resolve_choice(tracker, "3") is None  # out of range


def test_nothing_to_pick_once_the_citizen_wrote_or_a_session_started() -> None:
    answered = conversation(BotUttered("确认提交吗？", YES_NO), UserUttered("好", {}))
    assert latest_buttons(answered) == [] and resolve_choice(answered, "1") is None
    restarted = conversation(BotUttered("确认提交吗？", YES_NO), SessionStarted())
    assert resolve_choice(restarted, "1") is None


def test_numbers_are_left_alone_while_staff_hold_the_conversation() -> None:
    queued = conversation(BotUttered("正在为您转接人工客服", {"buttons": [{"title": "取消排队", "payload": "/handoff_cancel"}]}),
                          CustomEvent("pause", {}))
    assert queued.paused and resolve_choice(queued, "1") is None
