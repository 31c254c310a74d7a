"""Several real server processes over one shared PostgreSQL database (and Redis): the production shape, on loopback.

``shared_project`` copies the demo project (small knowledge base) and trains its NLU once, so replicas start
without racing to train; ``start_replica`` runs ``gov-assistant serve`` in its own process and waits for
``/readyz``. The first replica seeds and publishes the knowledge base; start the others after it is ready.

The process launcher (``Replica``, ``start_replica``) is the benchmarks' (``bench/replica_launcher.py``, which
imports nothing from the tests): one way to start and stop a replica for both.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from demo_project import ROOT, copy_demo_project, write_config

from bench.replica_launcher import Replica, child_env
from bench.replica_launcher import start_replica as launch_replica

# the suites import Replica from here
__all__ = ["Replica", "redis_available", "shared_project", "start_replica"]

KB_DOCS = ("appointment-rules.md", "citizen-centre.md", "idcard-renew.md", "idcard-loss.md")
REDIS_TEST_URL = os.environ.get("GOV_ASSISTANT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available(url: str = REDIS_TEST_URL) -> str | None:
    """None when Redis answers at ``url``, else why not."""
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return None
    except Exception as err:  # any failure means "not usable here"; the caller skips or fails with the reason
        return f"Redis not reachable at {url}: {err}"


def shared_project(
    dest: Path,
    *,
    database_url: str,
    backoffice_url: str,
    redis_url: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> Path:
    """A trained copy of the demo project in ``dest`` whose config points at ``database_url`` (and ``redis_url``
    with a key prefix of its own, so parallel test runs never share keys)."""
    config = copy_demo_project(dest, kb_docs=KB_DOCS, faq_lines=10, database="unused.db", backoffice_url=backoffice_url)
    config["database"] = {"url": database_url}
    if redis_url:
        config["redis"] = {"url": redis_url, "prefix": f"test-{uuid.uuid4().hex[:10]}"}
    # loopback load from one address would trip the per-address limit meant for the internet
    config["server"] = {**(config.get("server") or {}), "rate_per_minute": 1_000_000, "rate_burst": 100_000}
    for key, value in (extra_config or {}).items():
        config[key] = value
    write_config(dest, config)
    subprocess.run(
        [sys.executable, "-m", "assistant", "train", "--project", str(dest)],
        check=True, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return dest


def start_replica(
    project: Path, *, port: int | None = None, env: Mapping[str, str] | None = None, timeout_s: float = 180.0
) -> Replica:
    """``gov-assistant serve`` for ``project`` in a new process on ``port``; returns once ``/readyz`` says ready.
    The tests' default wait is shorter than the benchmarks' (their project is small and already trained)."""
    return launch_replica(project, port=port, env=dict(env or {}), timeout_s=timeout_s)
