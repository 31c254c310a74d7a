"""Shared test support: ``tests/support`` holds helpers more than one test area uses (a copy of the demo project,
a live uvicorn server, the server fixtures, services, Chromium) and is put on the import path here; its ``browser``
module is loaded as a plugin (the ``browser`` fixture); ``pg_url`` gives a test its own PostgreSQL database."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))
# the repository root too (``python -m pytest`` from it has it anyway): tests/support shares bench's launcher
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.append(ROOT)

from services import database_or_skip  # noqa: E402

pytest_plugins = ("browser",)


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with database_or_skip("test") as url:
        yield url
