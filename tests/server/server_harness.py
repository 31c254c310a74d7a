"""Helpers for the server tests: the test project, a uvicorn server in a thread, the form's answers.

The test project is the demo project with a small knowledge base, trained once per session (see conftest.py).

Nothing is faked: the NLU is trained from the demo's ``data/nlu.yml`` with the demo pipeline, the knowledge base is
imported and published with the real embedder (a handful of documents so it takes seconds), forms submit to the
demo back office on a local port, and the app is the one ``create_server_app`` builds.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def _has_rules(data_dir: Path) -> bool:
    for path in data_dir.rglob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(doc, dict) and doc.get("rules"):
            return True
    return False


def make_project(dest: Path, backoffice_url: str) -> Path:
    """A copy of the demo project in ``dest`` with a small knowledge base and server settings for tests."""
    for name in ("domain.yml", "endpoints.yml"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, dest / name)
    for name in ("data", "actions"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    if not _has_rules(dest / "data"):
        # the demo's dialogue rules are still being written; these few make greetings and the form reachable
        shutil.copy(FIXTURES / "server" / "rules.yml", dest / "data" / "server_rules.yml")
    kb = dest / "knowledge_base"
    (kb / "docs").mkdir(parents=True)
    for doc in KB_DOCS:
        shutil.copy(ROOT / "knowledge_base" / "docs" / doc, kb / "docs" / doc)
    faq = (ROOT / "knowledge_base" / "faq.jsonl").read_text(encoding="utf-8").splitlines()[:KB_FAQ_LINES]
    (kb / "faq.jsonl").write_text("\n".join(faq) + "\n", encoding="utf-8")

    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    config["database"] = {"url": "sqlite:///var/server-tests.db"}
    config.setdefault("forms", {}).setdefault("submission", {})
    config["forms"]["submission"].update({"url": f"{backoffice_url}/submissions", "timeout_s": 5, "max_retries": 0})
    config["server"] = dict(HIGH_LIMITS)
    config["channels"] = {
        "rest": {},
        "webchat": {},
        "socketio": {"session_persistence": True},
        "wechat": {"token": WECHAT_TOKEN},
    }
    (dest / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


def serve(app: Any) -> LiveServer:
    """``app`` under uvicorn on a free loopback port, in a daemon thread of this process."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets-sansio", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def stop(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=10)


def assert_error_body(body: Any) -> None:
    assert isinstance(body, dict), body
    for key in ("code", "message_zh", "message_en"):
        assert isinstance(body.get(key), str) and body[key], (key, body)
