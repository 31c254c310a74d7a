"""The server-side fixtures several suites repeat, built on the demo project copy (``demo_project``): a warmed-up
runtime with staff accounts, the app ``create_server_app`` builds, a test client and a live uvicorn server.

A suite's conftest keeps what is its own (``project_dir``: which documents, channels and settings; its ``runtime``
with its staff) and imports the generic fixtures from here. Imported into two conftests, a session fixture is
still one instance per suite, each resolving ``project_dir`` and ``runtime`` from its own directory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from demo_project import LiveServer, served
from fastapi import FastAPI
from fastapi.testclient import TestClient

from connectors.backoffice_demo import RunningBackOffice, serve_in_thread

# (username, role, display name or None for the username, team or None)
StaffAccount = tuple[str, str, str | None, str | None]


def console_over_http(config: dict[str, Any], *, always_open: bool = True, with_teams: bool = False) -> None:
    """Set up ``config``'s handoff for tests: staff on duty around the clock, the session cookie without Secure
    (tests talk plain HTTP to 127.0.0.1, where a Secure cookie is not stored), optionally two teams."""
    handoff = dict(config.get("handoff") or {})
    if always_open:
        handoff["service_hours"] = {**(handoff.get("service_hours") or {}), "always_open": True}
    handoff["console"] = {**(handoff.get("console") or {}), "cookie_secure": False}
    if with_teams:
        handoff["teams"] = [{"id": "general", "name": "综合咨询"}, {"id": "social_security", "name": "社保组"}]
        handoff["default_team"], handoff["complaint_team"] = "general", None
    config["handoff"] = handoff


def warm_runtime(project_dir: Path) -> Any:
    """``build_runtime`` for ``project_dir``, after one turn: the first turn loads lazily built parts (sentence
    encoder, caches), paid for here rather than in a test."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.agent import UserMessage
    from connectors.server import build_runtime

    runtime = build_runtime(project_dir)
    asyncio.run(runtime.agent.handle(UserMessage("warm-up", "你好")))
    return runtime


def create_staff(runtime: Any, password: str, staff: Iterable[StaffAccount]) -> None:
    """Real staff accounts (hashed passwords) in ``runtime``'s account store; ones that exist are kept."""
    for username, role, display_name, team in staff:
        if runtime.accounts.get(username) is None:
            runtime.accounts.create_user(username, password, role, display_name, team)


@pytest.fixture(scope="session")
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="session")
def app(project_dir: Path, runtime: Any) -> FastAPI:
    from connectors.server import create_server_app

    return create_server_app(project_dir, runtime=runtime)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    with served(app) as live:
        yield live
