"""Several real server processes over one shared PostgreSQL database (and Redis): the production shape, on loopback.

``shared_project`` copies the demo project (small knowledge base) and trains its NLU once, so replicas start
without racing to train; ``start_replica`` runs ``gov-assistant serve`` in its own process and waits for
``/readyz``. The first replica seeds and publishes the knowledge base; start the others after it is ready.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from demo_project import ROOT, copy_demo_project, free_port, write_config

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
        check=True, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return dest


@dataclass
class Replica:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as when a machine or container dies."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.update(extra or {})
    return env


def start_replica(
    project: Path, *, port: int | None = None, env: Mapping[str, str] | None = None, timeout_s: float = 180.0
) -> Replica:
    """``gov-assistant serve`` for ``project`` in a new process on ``port``; returns once ``/readyz`` says ready."""
    port = port or free_port()
    log_path = project / f"replica-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--project", str(project), "--port", str(port)],
            cwd=ROOT, env=_env(env), stdout=log, stderr=subprocess.STDOUT,
        )
    replica = Replica(f"http://127.0.0.1:{port}", port, process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replica on :{port} exited with {process.returncode}:\n{replica.log()[-4000:]}")
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return replica
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    replica.kill()
    raise RuntimeError(f"replica on :{port} not ready after {timeout_s:.0f} s:\n{replica.log()[-4000:]}")
