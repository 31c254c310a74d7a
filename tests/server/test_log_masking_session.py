"""A scripted session on the real demo runtime with every logger at DEBUG: no ID or phone number reaches the logs,
and no other value the citizen gave (name, reason, district, day) is logged by the code at all.

A citizen fills the ID-card form (ID number, name, phone, district, day) and submits it to the demo back office;
everything logged on the way goes through the root handlers that ``install`` filtered.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from server_harness import FORM_ID, FORM_START, form_answer

from assistant.agent import BotReply, UserMessage
from assistant.log_masking import PersonalDataFilter, install

PHONE = "13912345678"
# what must not appear: the numbers, and the parts masking hides (the birth date, the phone's middle digits)
SECRETS = (FORM_ID, PHONE, FORM_ID[6:14], PHONE[3:])


@pytest.fixture()
def debug_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.setLevel(level)
        root.removeHandler(handler)
        for h in root.handlers:  # the session's other handlers (pytest's) go back as they were
            h.filters[:] = [f for f in h.filters if not isinstance(f, PersonalDataFilter)]


def _say(runtime: Any, text: str) -> list[BotReply]:
    # a careless log call of the kind the filter is there for: it must come out masked, not leak
    logging.getLogger("tests.careless").debug("citizen said %r", text)
    return asyncio.run(runtime.agent.handle(UserMessage("log-masking", text)))


def test_form_session_logs_no_id_or_phone(runtime: Any, debug_log: io.StringIO) -> None:
    install(())
    replies = _say(runtime, FORM_START)
    answered = []
    for _ in range(12):
        if any(b.title == "确认提交" for r in replies for b in r.buttons):
            break
        prompt = next(r.text for r in reversed(replies) if r.text)
        answer = form_answer(prompt)
        answered.append(answer)
        replies = _say(runtime, answer)
    else:
        pytest.fail(f"the form never asked for confirmation: {[r.text for r in replies]}")
    assert FORM_ID in answered and PHONE in answered
    replies = _say(runtime, "/affirm")
    assert any(r.text for r in replies)

    logged = debug_log.getvalue()
    assert "1101**********7571" in logged and "139****5678" in logged  # the filter was on the path
    compact = re.sub(r"[\s\-]", "", logged)
    for secret in SECRETS:
        assert secret not in compact, [line for line in logged.splitlines() if secret in re.sub(r"[\s\-]", "", line)]
    # names, reasons, districts and dates cannot be masked by pattern: no line but the test's own careless one
    # may hold any value the citizen gave
    assert "张三" in answered
    ours = [line for line in logged.splitlines() if not line.startswith("DEBUG tests.careless:")]
    for value in answered:
        assert not any(value in line for line in ours), [line for line in ours if value in line]
