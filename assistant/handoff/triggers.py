"""What hands a conversation to staff, read from the latest message: pure functions of text, intent and config.

Keywords are matched on normalised text (full-width folded, traditional → simplified, lower case), so
``轉人工``, ``转 人工`` and ``ＺＨＵＡＮ人工`` spellings of the same request are treated alike where the
normaliser maps them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.handoff.config import HandoffConfig
from nlu.normalize import normalize_text

CANCEL_PAYLOAD = "/handoff_cancel"
LEAVE_MESSAGE_PAYLOAD = "/handoff_leave_message"
RATE_INTENT = "handoff_rate"
_SPACES = re.compile(r"\s+")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_RATING = re.compile(r"^([1-5一二两三四五])\s*(分|星|颗星)?$")

PRIORITY = {"urgent": 2, "complaint": 1, "request": 0, "fallback": 0, "staff": 0}


@dataclass(frozen=True)
class Trigger:
    reason: str  # request | complaint | urgent | fallback
    priority: int
    detail: str = ""


def _norm(text: str) -> str:
    return _SPACES.sub("", normalize_text(text or ""))


def _has_keyword(text: str, keywords: list[str]) -> str | None:
    n = _norm(text)
    for k in keywords:
        if _norm(k) and _norm(k) in n:
            return k
    return None


def _intent(message: Mapping[str, Any]) -> tuple[str | None, float]:
    intent = message.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def detect(message: Mapping[str, Any], config: HandoffConfig) -> Trigger | None:
    """The strongest trigger in ``message`` (urgent before complaint before a plain request)."""
    t = config.triggers
    text = str(message.get("text") or "")
    name, confidence = _intent(message)
    confident = confidence >= t.min_confidence
    checks = (
        ("urgent", t.urgent_keywords, t.urgent_intents),
        ("complaint", t.complaint_keywords, t.complaint_intents),
        ("request", t.request_keywords, t.request_intents),
    )
    for reason, keywords, intents in checks:
        word = _has_keyword(text, keywords)
        if word is not None:
            return Trigger(reason, PRIORITY[reason], f"keyword:{word}")
        if confident and name in intents:
            return Trigger(reason, PRIORITY[reason], f"intent:{name}")
    return None


def asks_queue_status(message: Mapping[str, Any], config: HandoffConfig) -> bool:
    """A queued citizen asking how long it takes, or asking for a human again ("转人工" once more)."""
    text = str(message.get("text") or "")
    return _has_keyword(text, config.triggers.status_keywords) is not None or detect(message, config) is not None


def is_cancel(text: str, config: HandoffConfig) -> bool:
    if text.strip() == CANCEL_PAYLOAD:
        return True
    n = _norm(text)
    # only a short message that is essentially the cancel phrase: "取消" inside a long question is not a cancel
    return len(n) <= 8 and _has_keyword(text, config.triggers.cancel_keywords) is not None


def parse_rating(message: Mapping[str, Any]) -> int | None:
    """1–5 from a rating button (``/handoff_rate{"rating": 4}``) or a typed answer (``4``, ``４分``, ``五星``)."""
    name, _ = _intent(message)
    if name == RATE_INTENT:
        for e in message.get("entities") or []:
            if e.get("entity") == "rating":
                try:
                    value = int(e.get("value"))
                except (TypeError, ValueError):
                    return None
                return value if 1 <= value <= 5 else None
        return None
    text = _norm(str(message.get("text") or ""))
    m = _RATING.match(text)
    if m is None:
        return None
    d = m.group(1)
    return int(d) if d.isdigit() else _CN_DIGITS[d]


def rate_payload(rating: int) -> str:
    return f"/{RATE_INTENT}" + json.dumps({"rating": rating})
