"""Session fixtures for the server tests: a real runtime of the demo project (small knowledge base), trained once.

Nothing is faked: the NLU is trained from the demo's ``data/nlu.yml`` with the demo pipeline, the knowledge base is
imported and published with the real embedder (a handful of documents so it takes seconds), forms submit to the
demo back office on a local port, and the app is the one ``create_server_app`` builds.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_harness import LiveServer, make_project, serve, stop

from assistant.agent import UserMessage
from connectors.backoffice_demo import RunningBackOffice, serve_in_thread


@pytest.fixture(scope="session")
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread() as running:
        yield running


@pytest.fixture(scope="session")
def project_dir(tmp_path_factory: pytest.TempPathFactory, backoffice: RunningBackOffice) -> Path:
    return make_project(tmp_path_factory.mktemp("project"), backoffice.url)


@pytest.fixture(scope="session")
def runtime(project_dir: Path) -> Any:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from connectors.server import build_runtime

    rt = build_runtime(project_dir)
    # the first turn loads lazily built parts (sentence encoder, caches): pay for it here, not in a timed test
    asyncio.run(rt.agent.handle(UserMessage("warm-up", "你好")))
    return rt


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
    live = serve(app)
    try:
        yield live
    finally:
        stop(live)
