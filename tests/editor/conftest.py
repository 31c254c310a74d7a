"""A real server for the editor tests: the demo project with a small knowledge base, trained once per session.

Nothing is faked: the NLU is trained from the demo's data, the knowledge base is imported and published with the
real embedders, and the app is the one ``create_server_app`` builds (the editor page, the knowledge API, the
console and the citizens' widget on one live uvicorn server).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from demo_project import LiveServer, copy_demo_project, serve, stop, write_config
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.agent import UserMessage
from connectors.backoffice_demo import RunningBackOffice, serve_in_thread

KB_DOCS = ("citizen-centre.md", "idcard-renew.md", "sbk-loss-replace.md")
KB_FAQ_LINES = 8
PASSWORD = "editor-pass-2024"
# one peer address for every test client: limits high enough for a browser loading the page and its calls
LIMITS = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "max_body_bytes": 5_000_000, "timeout_s": 120}


@pytest.fixture(scope="session")
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    dest = tmp_path_factory.mktemp("editor-project")
    config = copy_demo_project(
        dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="editor-tests.db", backoffice_url=backoffice.url
    )
    config["server"] = dict(LIMITS)
    config["channels"] = {"rest": {}, "webchat": {}}
    handoff = dict(config.get("handoff") or {})
    # plain http on 127.0.0.1 in tests: a Secure cookie would not be stored
    handoff["console"] = {**(handoff.get("console") or {}), "cookie_secure": False}
    config["handoff"] = handoff
    return write_config(dest, config)


def editor_role() -> str:
    """"editor" once the accounts know it (issue 7), else "admin", the other role the editor admits."""
    from assistant.accounts import ROLES

    return "editor" if "editor" in ROLES else "admin"


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from connectors.server import build_runtime

    rt = build_runtime(project_dir)
    asyncio.run(rt.agent.handle(UserMessage("warm-up", "你好")))
    for username, role in (("editor-li", editor_role()), ("agent-wang", "agent")):
        if rt.accounts.get(username) is None:
            rt.accounts.create_user(username, PASSWORD, role, "李编辑" if role != "agent" else "王坐席")
    return rt


@pytest.fixture(scope="session")
def app(project_dir: Path, runtime: Any) -> FastAPI:
    from connectors.server import create_server_app

    return create_server_app(project_dir, runtime=runtime)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def editor(client: TestClient) -> TestClient:
    """``client`` logged in through the editor's login: session cookie set, CSRF token in the default headers."""
    r = client.post("/api/editor/login", json={"username": "editor-li", "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    return client


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    live = serve(app)
    try:
        yield live
    finally:
        stop(live)
