"""Shared test support: ``tests/support`` holds helpers more than one test area uses (a copy of the demo project,
a live uvicorn server) and is put on the import path here; ``pg_url`` gives a test its own PostgreSQL database."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).parent / "support"))

# CI starts PostgreSQL (.ci/run makes it mandatory); a developer machine without it skips those cases
PG_ADMIN_URL = os.environ.get(
    "GOV_ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        conn = admin.connect()
    except (OperationalError, ImportError) as err:
        if os.environ.get("GOV_ASSISTANT_REQUIRE_SERVICES"):
            raise
        pytest.skip(f"PostgreSQL not reachable: {err}")
    name = f"test_{uuid.uuid4().hex[:12]}"
    conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.close()
        admin.dispose()
