"""A real server for the dashboard and feedback tests: the demo project with a small knowledge base, trained once.

Nothing is faked: the NLU is trained from the demo's ``data/nlu.yml``, the knowledge base is imported and published
with the real embedder, the app is the one ``create_server_app`` builds, and the staff accounts are real ones.
``db_url`` gives the store tests an empty SQLite file and, in a second run, an empty PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from analytics_reference import PASSWORD, STAFF
from demo_project import copy_demo_project, write_config
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.agent import UserMessage
from connectors.backoffice_demo import RunningBackOffice, serve_in_thread

KB_DOCS = ("appointment-rules.md", "citizen-centre.md", "idcard-renew.md")
KB_FAQ_LINES = 10
HIGH_LIMITS = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "timeout_s": 30}


@pytest.fixture(scope="session")
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    dest = tmp_path_factory.mktemp("analytics-project")
    config = copy_demo_project(dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="analytics-tests.db",
                               backoffice_url=backoffice.url)
    config["server"] = dict(HIGH_LIMITS)
    config["channels"] = {"rest": {}, "webchat": {}}
    handoff = dict(config.get("handoff") or {})
    handoff["service_hours"] = {**(handoff.get("service_hours") or {}), "always_open": True}
    handoff["console"] = {**(handoff.get("console") or {}), "cookie_secure": False}
    config["handoff"] = handoff
    return write_config(dest, config)


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from connectors.dashboard import attach_dashboard
    from connectors.server import build_runtime

    rt = build_runtime(project_dir)
    attach_dashboard(rt)  # no-op when build_runtime already mounted it
    rt.analytics.cache_seconds = 0  # every request of a test sees the conversations it just had
    asyncio.run(rt.agent.handle(UserMessage("warm-up", "你好")))
    for role, username in STAFF.items():
        if rt.accounts.get(username) is None:
            rt.accounts.create_user(username, PASSWORD, role, username)
    return rt


@pytest.fixture(scope="session")
def app(project_dir: Path, runtime: Any) -> FastAPI:
    from connectors.server import create_server_app

    return create_server_app(project_dir, runtime=runtime)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analytics.db'}"
    return str(request.getfixturevalue("pg_url"))
