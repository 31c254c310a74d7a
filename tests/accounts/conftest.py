"""A real server for the accounts tests: the demo project with a small knowledge base, built once per session.

The app is the one ``create_server_app`` builds (every router the server mounts, the audit middleware), over a
real SQLite database; staff accounts for each role are created through ``Accounts``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from accounts_helpers import FAST_HASHER, KB_DOCS, KB_FAQ_LINES, PASSWORD, STAFF
from demo_project import copy_demo_project, write_config
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_app import app, backoffice, console_over_http, create_staff, live_server, warm_runtime

from connectors.backoffice_demo import RunningBackOffice

__all__ = ["app", "backoffice", "live_server"]


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    dest = tmp_path_factory.mktemp("accounts-project")
    config = copy_demo_project(dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="accounts-tests.db",
                               backoffice_url=backoffice.url)
    config["server"] = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "timeout_s": 60}
    config["channels"] = {"rest": {}, "webchat": {}, "socketio": {}, "wechat": {"token": "accountstest"}}
    console_over_http(config, with_teams=True)
    return write_config(dest, config)


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    rt = warm_runtime(project_dir)
    # real argon2 with cheap parameters: the login tests make dozens of logins on a busy 2-core machine, and the
    # hashing cost is not what they test (the dummy hash of unknown users is remade with the same parameters)
    rt.accounts.hasher = FAST_HASHER
    rt.accounts._dummy = FAST_HASHER.hash(uuid.uuid4().hex)
    create_staff(rt, PASSWORD, [(name, role, None, "general" if role == "agent" else None)
                                for name, role in STAFF.items()])
    return rt


@pytest.fixture()
def address() -> str:
    """The client address of this test's requests: each test its own, as the login limits count per address."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture()
def client(app: FastAPI, address: str) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, client=(address, 50000)) as c:
        yield c
