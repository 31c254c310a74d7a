"""The external services the suites use (PostgreSQL, Redis, Chromium): skipped with the reason on a machine that
lacks one, a failure under GOV_ASSISTANT_REQUIRE_SERVICES=1 (CI), and a PostgreSQL database of a test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

# CI starts PostgreSQL (.ci/run makes it mandatory); a developer machine without it skips those cases
PG_ADMIN_URL = os.environ.get(
    "GOV_ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def services_required() -> bool:
    """True where a missing service must fail the run (CI) rather than skip the tests that need it."""
    return os.environ.get("GOV_ASSISTANT_REQUIRE_SERVICES") == "1"


def require_or_skip(reason: str) -> NoReturn:
    if services_required():
        pytest.fail(reason)
    pytest.skip(reason)


def postgres_admin() -> Any:
    """An AUTOCOMMIT connection to the test server's admin database; raises when PostgreSQL does not answer."""
    from sqlalchemy import create_engine

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        return engine.connect()
    except BaseException:
        engine.dispose()
        raise


@contextmanager
def temporary_database(admin: Any, prefix: str) -> Iterator[str]:
    """A new, empty database on ``admin``'s server, dropped (with ``admin`` closed) afterwards; yields its URL."""
    from sqlalchemy import make_url, text

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.close()
        admin.engine.dispose()


@contextmanager
def database_or_skip(prefix: str) -> Iterator[str]:
    """``temporary_database`` on the test server, or skip (fail under GOV_ASSISTANT_REQUIRE_SERVICES=1) when
    PostgreSQL does not answer."""
    from sqlalchemy.exc import OperationalError

    try:
        admin = postgres_admin()
    except (OperationalError, ImportError) as err:
        require_or_skip(f"PostgreSQL not reachable: {err}")
    with temporary_database(admin, prefix) as url:
        yield url


def redis_test_url() -> str:
    """The test Redis URL, after skipping (failing under GOV_ASSISTANT_REQUIRE_SERVICES=1) when it does not answer."""
    from replicas import REDIS_TEST_URL, redis_available

    reason = redis_available()
    if reason is not None:
        require_or_skip(reason)
    return REDIS_TEST_URL


@contextmanager
def redis_keys_deleted(url: str, prefix: str) -> Iterator[str]:
    """Yields ``prefix``; afterwards deletes every key under it, so no test leaves keys behind in a shared Redis."""
    import redis

    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
