"""Helpers for the server tests: the test project, a uvicorn server in a thread, the form's answers.

The test project is the demo project with a small knowledge base, trained once per session (see conftest.py).

Nothing is faked: the NLU is trained from the demo's ``data/nlu.yml`` with the demo pipeline, the knowledge base is
imported and published with the real embedder (a handful of documents so it takes seconds), forms submit to the
demo back office on a local port, and the app is the one ``create_server_app`` builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from demo_project import ROOT, LiveServer, copy_demo_project, serve, stop, write_config

# the server tests import these from here; they live in tests/support for the other suites too
__all__ = ["ROOT", "LiveServer", "serve", "stop"]

# enough of the demo knowledge base for questions about appointments, the citizen centre and ID cards
KB_DOCS = ("appointment-rules.md", "citizen-centre.md", "district-halls.md", "idcard-renew.md", "idcard-loss.md")
KB_FAQ_LINES = 12
WECHAT_TOKEN = "spamtest"
# every test client shares one peer address: the session app's limits are high, one test checks them with its own
HIGH_LIMITS = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "max_body_bytes": 8192, "timeout_s": 30}


FORM_START = "帮我预约换身份证"
FORM_ID = "110101199003077571"  # a valid check digit


def form_answer(prompt: str) -> str:
    """What a citizen answers to the ID-card form's question in ``prompt`` (whichever field it asks for)."""
    answers = [
        ("身份证号", FORM_ID), ("姓名", "张三"), ("手机", "13912345678"), ("电话", "13912345678"),
        ("原因", "到期换领"), ("区县", "高新区"), ("时间", bookable_day()), ("工作日", bookable_day()),
    ]
    for key, answer in answers:
        if key in prompt:
            return answer
    raise AssertionError(f"not a question of the ID-card form: {prompt!r}")


def bookable_day() -> str:
    """A date the ID-card form accepts whatever day the tests run: the next working day after today (Shanghai)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from assistant.calendar import load_holiday_calendar

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    day = load_holiday_calendar().next_working_day(today + timedelta(days=1))
    return f"{day.month}月{day.day}日"


def make_project(dest: Path, backoffice_url: str) -> Path:
    """A copy of the demo project in ``dest`` with a small knowledge base and server settings for tests."""
    config = copy_demo_project(
        dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="server-tests.db", backoffice_url=backoffice_url
    )
    config["server"] = dict(HIGH_LIMITS)
    config["channels"] = {
        "rest": {},
        "webchat": {},
        "socketio": {"session_persistence": True},
        "wechat": {"token": WECHAT_TOKEN},
    }
    return write_config(dest, config)


def assert_error_body(body: Any) -> None:
    assert isinstance(body, dict), body
    for key in ("code", "message_zh", "message_en"):
        assert isinstance(body.get(key), str) and body[key], (key, body)
