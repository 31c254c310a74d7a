"""One real server process for the fault tests, reaching PostgreSQL, Redis and the demo back office only through
TCP proxies the tests control (``tcp_proxy.TcpProxy``): an outage is a cut proxy, never a stopped service.

The replica is shared by the whole package (starting it trains nothing but loads the models and publishes a small
knowledge base, tens of seconds on 2 cores); every test leaves the proxies restored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_rig import FaultRig
from replicas import REDIS_TEST_URL, redis_available, shared_project, start_replica
from services import database_or_skip, services_required
from sqlalchemy import create_engine, make_url
from tcp_proxy import TcpProxy

from connectors.backoffice_demo import serve_in_thread

# the outbox worker looks for kept submissions this often in these tests (production default: config)
OUTBOX_INTERVAL_S = 1.0


@pytest.fixture(scope="session")
def outbox_interval_s() -> float:
    """How often the rig's outbox retries (test modules take it as a fixture: ``from conftest import`` would find
    whichever suite's conftest pytest loaded last)."""
    return OUTBOX_INTERVAL_S


@pytest.fixture(scope="session")
def fault_database() -> Iterator[str]:
    with database_or_skip("faults") as url:
        yield url


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory, fault_database: str) -> Iterator[FaultRig]:
    db_url = make_url(fault_database)
    pg = TcpProxy(db_url.host or "127.0.0.1", db_url.port or 5432).start()
    redis_proxy: TcpProxy | None = None
    redis_url: str | None = None
    if redis_available() is None:
        target = make_url(REDIS_TEST_URL.replace("redis://", "redis+x://"))
        redis_proxy = TcpProxy(target.host or "127.0.0.1", target.port or 6379).start()
        redis_url = f"redis://127.0.0.1:{redis_proxy.port}/{target.database or 0}"
    elif services_required():
        pytest.fail(str(redis_available()))
    with serve_in_thread() as backoffice:
        bo_port = int(backoffice.url.rsplit(":", 1)[1])
        bo_proxy = TcpProxy("127.0.0.1", bo_port).start()
        proxied_db = db_url.set(host="127.0.0.1", port=pg.port).render_as_string(hide_password=False)
        bo_url = f"http://127.0.0.1:{bo_proxy.port}"
        project = shared_project(
            tmp_path_factory.mktemp("faults"),
            database_url=proxied_db,
            backoffice_url=bo_url,
            redis_url=redis_url,
            extra_config={
                "forms": {
                    "submission": {"url": f"{bo_url}/submissions", "timeout_s": 2, "max_retries": 0},
                    "outbox": {"interval_s": OUTBOX_INTERVAL_S, "backoff_s": 0.5, "backoff_max_s": 2},
                }
            },
        )
        # generous: on a shared 2-core machine loading the models and publishing can take minutes
        replica = start_replica(project, timeout_s=600)
        direct = create_engine(fault_database)
        try:
            yield FaultRig(replica, pg, redis_proxy, backoffice, bo_proxy, direct)
        finally:
            replica.stop()
            direct.dispose()
            for proxy in (pg, redis_proxy, bo_proxy):
                if proxy is not None:
                    proxy.close()


@pytest.fixture()
def fresh_session() -> str:
    return f"fault-{uuid.uuid4().hex[:16]}"


def project_of(rig: FaultRig) -> Path:
    return rig.replica.log_path.parent
