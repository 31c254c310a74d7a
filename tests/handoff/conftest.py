"""A real server for the handoff tests: the demo project with a small knowledge base, trained once per session.

The NLU is trained from the demo's ``data/nlu.yml``, the knowledge base is imported with the real embedder, forms
submit to the demo back office and WeChat's customer-service API is a small fake HTTP server on a local port that
keeps the 48-hour window the way WeChat does (the test says when the citizen last wrote).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from demo_project import copy_demo_project, served, write_config
from fastapi import FastAPI
from handoff_helpers import PASSWORD, WECHAT_TOKEN, FakeWeChat
from server_app import backoffice, client, console_over_http, create_staff, warm_runtime

from connectors.backoffice_demo import RunningBackOffice

__all__ = ["backoffice", "client"]

KB_DOCS = ("appointment-rules.md", "citizen-centre.md", "idcard-renew.md")
KB_FAQ_LINES = 10
HIGH_LIMITS = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "timeout_s": 30}
STAFF = (
    ("agent1", "agent", "王芳", "general"),
    ("agent2", "agent", "李强", "general"),
    ("agent3", "agent", "赵敏", "social_security"),
    ("boss", "admin", "张主任", None),
)


@pytest.fixture(scope="session")
def wechat_fake() -> Iterator[FakeWeChat]:
    fake = FakeWeChat()
    with served(fake.app(), ws="websockets") as live:  # handoff_helpers.serve's settings
        fake.url = live.url
        yield fake


def make_project(dest: Path, backoffice_url: str, wechat_url: str) -> Path:
    config = copy_demo_project(
        dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="handoff-tests.db", backoffice_url=backoffice_url
    )
    config["server"] = dict(HIGH_LIMITS)
    config["channels"] = {"rest": {}, "webchat": {}, "wechat": {"token": WECHAT_TOKEN, "appid": "wxtest",
                                                                 "secret": "s", "api_base_url": wechat_url}}
    # staff are always on duty in these tests; the out-of-hours test swaps the calendar
    console_over_http(config, with_teams=True)
    return write_config(dest, config)


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice, wechat_fake: FakeWeChat) -> Path:
    return make_project(tmp_path_factory.mktemp("handoff-project"), backoffice.url, wechat_fake.url)


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    from connectors.console.wiring import attach_console

    rt = warm_runtime(project_dir)
    attach_console(rt)  # no-op when the server already attached it
    create_staff(rt, PASSWORD, STAFF)
    return rt


@pytest.fixture(scope="session")
def app(project_dir: Path, runtime: Any) -> FastAPI:
    """The engine's app with the console bound to its channels (not the whole server ``create_server_app``
    builds)."""
    from assistant.app import create_app
    from connectors.console.wiring import bind_channels

    app = create_app(runtime, runtime.config.server, runtime.config.channels)
    bind_channels(runtime, app.state.channels)
    return app
