"""A real server for the dashboard and feedback tests: the demo project with a small knowledge base, trained once.

Nothing is faked: the NLU is trained from the demo's ``data/nlu.yml``, the knowledge base is imported and published
with the real embedder, the app is the one ``create_server_app`` builds, and the staff accounts are real ones.
``db_url`` gives the store tests an empty SQLite file and, in a second run, an empty PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from analytics_reference import PASSWORD, STAFF
from demo_project import copy_demo_project, write_config
from server_app import app, backoffice, client, console_over_http, create_staff, warm_runtime

from connectors.backoffice_demo import RunningBackOffice

__all__ = ["app", "backoffice", "client"]

KB_DOCS = ("appointment-rules.md", "citizen-centre.md", "idcard-renew.md")
KB_FAQ_LINES = 10
HIGH_LIMITS = {"rate_per_minute": 1_000_000, "rate_burst": 100_000, "timeout_s": 30}


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    dest = tmp_path_factory.mktemp("analytics-project")
    config = copy_demo_project(dest, kb_docs=KB_DOCS, faq_lines=KB_FAQ_LINES, database="analytics-tests.db",
                               backoffice_url=backoffice.url)
    config["server"] = dict(HIGH_LIMITS)
    config["channels"] = {"rest": {}, "webchat": {}}
    console_over_http(config)
    return write_config(dest, config)


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    from connectors.dashboard import attach_dashboard

    rt = warm_runtime(project_dir)
    attach_dashboard(rt)  # no-op when build_runtime already mounted it
    rt.analytics.cache_seconds = 0  # every request of a test sees the conversations it just had
    create_staff(rt, PASSWORD, [(username, role, username, None) for role, username in STAFF.items()])
    return rt


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'analytics.db'}"
    return str(request.getfixturevalue("pg_url"))
