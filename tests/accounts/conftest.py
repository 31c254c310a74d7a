"""A real server for the accounts tests: the demo project with a small knowledge base, built once per session.

The app is the one ``create_server_app`` builds (every router the server mounts, the audit middleware), over a
real SQLite database; staff accounts for each role are created through ``Accounts``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import FAST_HASHER, KB_DOCS, KB_FAQ_LINES, PASSWORD, STAFF
from demo_project import LiveServer, copy_demo_project, serve, stop, write_config
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.agent import UserMessage
from connectors.backoffice_demo import RunningBackOffice, serve_in_thread


@pytest.fixture(scope="session")
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    dest = tmp_path_factory.mktemp("accounts-project")
    config = copy_demo_project(dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="accounts-tests.db",
                               backoffice_url=backoffice.url)
    config["server"] = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "timeout_s": 60}
    config["channels"] = {"rest": {}, "webchat": {}, "socketio": {}, "wechat": {"token": "accountstest"}}
    handoff = dict(config.get("handoff") or {})
    handoff["service_hours"] = {**(handoff.get("service_hours") or {}), "always_open": True}
    handoff["console"] = {**(handoff.get("console") or {}), "cookie_secure": False}  # plain HTTP in tests
    handoff["teams"] = [{"id": "general", "name": "综合咨询"}, {"id": "social_security", "name": "社保组"}]
    handoff["default_team"], handoff["complaint_team"] = "general", None
    config["handoff"] = handoff
    return write_config(dest, config)


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from connectors.server import build_runtime

    rt = build_runtime(project_dir)
    asyncio.run(rt.agent.handle(UserMessage("warm-up", "你好")))
    # real argon2 with cheap parameters: the login tests make dozens of logins on a busy 2-core machine, and the
    # hashing cost is not what they test (the dummy hash of unknown users is remade with the same parameters)
    rt.accounts.hasher = FAST_HASHER
    rt.accounts._dummy = FAST_HASHER.hash(uuid.uuid4().hex)
    for username, role in STAFF.items():
        if rt.accounts.get(username) is None:
            rt.accounts.create_user(username, PASSWORD, role, team="general" if role == "agent" else None)
    return rt


@pytest.fixture(scope="session")
def app(project_dir: Path, runtime: Any) -> FastAPI:
    from connectors.server import create_server_app

    return create_server_app(project_dir, runtime=runtime)


@pytest.fixture()
def address() -> str:
    """The client address of this test's requests: each test its own, as the login limits count per address."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture()
def client(app: FastAPI, address: str) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, client=(address, 50000)) as c:
        yield c


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    live = serve(app)
    try:
        yield live
    finally:
        stop(live)

