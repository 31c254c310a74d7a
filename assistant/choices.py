"""Numbered choices for channels without buttons: WeChat shows a message's buttons as "1. 确认提交 2. 修改信息",
and a citizen answering "1" means the first of them.

A channel that renders buttons this way marks its messages with ``NUMBERED_CHOICES`` in the metadata; the engine then
reads a bare number (1, ２, 第三个, 选2) as the payload of that button of the latest bot message with buttons, if the
citizen has not written since and the session has not started again. While staff hold the conversation numbers are
left alone: they are answers to a person.
"""

from __future__ import annotations

import re
from typing import Any

from assistant.events import BotUttered, Restarted, SessionStarted, UserUttered
from assistant.tracker import Tracker

NUMBERED_CHOICES = "numbered_choices"

_HAN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CHOICE = re.compile(r"^(?:选择?|第)?\s*([1-9１-９一二两三四五六七八九])\s*(?:个|项|条|号)?\s*[.。、!！]?$")


def numbered_choice(text: str) -> int | None:
    """The number a short answer picks (1-based), or None when it is not just a choice."""
    m = _CHOICE.match(text.strip())
    if m is None:
        return None
    digit = m.group(1)
    if digit in _HAN_DIGITS:
        return _HAN_DIGITS[digit]
    return int(digit.translate(str.maketrans("１２３４５６７８９", "123456789")))


def latest_buttons(tracker: Tracker) -> list[dict[str, Any]]:
    """The buttons of the latest bot message that has some, since the citizen's last message in this session."""
    for e in reversed(tracker.events):
        if isinstance(e, (UserUttered, SessionStarted, Restarted)):
            return []
        if isinstance(e, BotUttered) and e.data.get("buttons"):
            return list(e.data["buttons"])
    return []


def resolve_choice(tracker: Tracker, text: str) -> str | None:
    """The payload ``text`` picks by number, or None (not a number, out of range, or nothing was offered)."""
    number = numbered_choice(text)
    if number is None or tracker.paused:
        return None
    buttons = latest_buttons(tracker)
    if not 1 <= number <= len(buttons):
        return None
    payload = buttons[number - 1].get("payload") or buttons[number - 1].get("title")
    return str(payload) if payload else None
