"""A real server for the editor tests: the demo project with a small knowledge base, trained once per session.

Nothing is faked: the NLU is trained from the demo's data, the knowledge base is imported and published with the
real embedders, and the app is the one ``create_server_app`` builds (the editor page, the knowledge API, the
console and the citizens' widget on one live uvicorn server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from demo_project import copy_demo_project, write_config
from fastapi.testclient import TestClient
from server_app import app, backoffice, client, console_over_http, create_staff, live_server, warm_runtime

from connectors.backoffice_demo import RunningBackOffice

__all__ = ["app", "backoffice", "client", "live_server"]

KB_DOCS = ("citizen-centre.md", "idcard-renew.md", "sbk-loss-replace.md")
KB_FAQ_LINES = 8
# test modules here receive it through the ``staff_password`` fixture: ``from conftest import`` finds whichever
# conftest pytest loaded last when several test directories are named on one command line
PASSWORD = "editor-pass-2024"
# one peer address for every test client: limits high enough for a browser loading the page and its calls
LIMITS = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "max_body_bytes": 5_000_000, "timeout_s": 120}


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    dest = tmp_path_factory.mktemp("editor-project")
    config = copy_demo_project(
        dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="editor-tests.db", backoffice_url=backoffice.url
    )
    config["server"] = dict(LIMITS)
    config["channels"] = {"rest": {}, "webchat": {}}
    console_over_http(config, always_open=False)
    return write_config(dest, config)


def editor_role() -> str:
    """"editor" once the accounts know it (issue 7), else "admin", the other role the editor admits."""
    from assistant.accounts import ROLES

    return "editor" if "editor" in ROLES else "admin"


@pytest.fixture(scope="session")
def staff_password() -> str:
    return PASSWORD


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    rt = warm_runtime(project_dir)
    create_staff(rt, PASSWORD, [("editor-li", editor_role(), "李编辑", None), ("agent-wang", "agent", "王坐席", None)])
    return rt


@pytest.fixture()
def editor(client: TestClient) -> TestClient:
    """``client`` logged in through the editor's login: session cookie set, CSRF token in the default headers."""
    r = client.post("/api/editor/login", json={"username": "editor-li", "password": PASSWORD})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    return client
