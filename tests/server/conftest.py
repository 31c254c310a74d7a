"""Session fixtures for the server tests: a real runtime of the demo project (small knowledge base), trained once.

Nothing is faked: the NLU is trained from the demo's ``data/nlu.yml`` with the demo pipeline, the knowledge base is
imported and published with the real embedder (a handful of documents so it takes seconds), forms submit to the
demo back office on a local port, and the app is the one ``create_server_app`` builds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from server_app import app, backoffice, client, live_server, warm_runtime
from server_harness import make_project

from connectors.backoffice_demo import RunningBackOffice

__all__ = ["app", "backoffice", "client", "live_server"]


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    return make_project(tmp_path_factory.mktemp("project"), backoffice.url)


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    return warm_runtime(project_dir)
