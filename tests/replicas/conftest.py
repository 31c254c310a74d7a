"""Fixtures for the several-replicas suite: a Redis key prefix of the test's own (deleted afterwards), and a
cluster of two real server processes over PostgreSQL and Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import yaml
from demo_project import ROOT
from replica_client import LEASE_S, Cluster
from replicas import REDIS_TEST_URL, Replica, shared_project, start_replica
from services import redis_keys_deleted, redis_test_url

from connectors.backoffice_demo import serve_in_thread

PG_ADMIN_URL = os.environ.get(
    "GOV_ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require_redis() -> str:
    """The test Redis URL, or skip (fail under GOV_ASSISTANT_REQUIRE_SERVICES=1) when Redis does not answer."""
    return redis_test_url()


@pytest.fixture()
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    with redis_keys_deleted(require_redis(), f"test-locks-{uuid.uuid4().hex[:10]}") as prefix:
        yield prefix


def require_postgres() -> Any:
    """An AUTOCOMMIT engine on the test PostgreSQL server, or skip (fail under GOV_ASSISTANT_REQUIRE_SERVICES=1)."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        admin.connect().close()
    except (OperationalError, ImportError) as err:
        if os.environ.get("GOV_ASSISTANT_REQUIRE_SERVICES") == "1":
            pytest.fail(f"PostgreSQL not reachable: {err}")
        pytest.skip(f"PostgreSQL not reachable: {err}")
    return admin


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two ``gov-assistant serve`` processes over one fresh PostgreSQL database and one Redis key prefix, forms
    submitted to the demo back office, handoff open around the clock; each replica warmed up (models loaded)."""
    import redis
    from sqlalchemy import make_url, text

    require_redis()
    admin = require_postgres()
    name = f"test_replicas_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    prefix = f"test-replicas-{uuid.uuid4().hex[:10]}"
    demo = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    handoff = {**(demo.get("handoff") or {})}
    handoff["service_hours"] = {**(handoff.get("service_hours") or {}), "always_open": True}
    replicas: list[Replica] = []
    try:
        with serve_in_thread() as backoffice:
            project = shared_project(
                tmp_path_factory.mktemp("replicas"), database_url=database_url, backoffice_url=backoffice.url,
                extra_config={
                    "redis": {"url": REDIS_TEST_URL, "prefix": prefix, "lock_lease_s": LEASE_S},
                    "handoff": handoff,
                },
            )
            # both started at once on the empty database: one migrates and seeds the knowledge base while the
            # other waits for the startup lock (test_replicas checks nothing was done twice); under load a start
            # takes a minute or two
            with ThreadPoolExecutor(2) as pool:
                starting = [pool.submit(start_replica, project, timeout_s=600) for _ in range(2)]
                for future in starting:
                    try:
                        replicas.append(future.result())
                    except Exception:
                        for other in starting:
                            if other.done() and other.exception() is None:
                                other.result().stop()
                        raise
            for i, replica in enumerate(replicas):
                # the first turns load the models lazily: not part of what the tests measure
                for text_ in ("你好", "身份证过期了怎么换"):
                    r = httpx.post(f"{replica.url}/webhooks/rest/webhook",
                                   json={"sender": f"warmup-{i}", "message": text_}, timeout=120)
                    r.raise_for_status()
            yield Cluster(replicas, database_url, prefix, backoffice)
    finally:
        for replica in replicas:
            replica.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(REDIS_TEST_URL)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
