"""Real server replicas for benchmarks: a trained copy of the demo project over a shared database (and Redis), each
replica ``gov-assistant serve`` in its own process on a loopback port.

The benchmarks do not import the test suite; the other way round, ``tests/support/replicas.py`` starts its
replicas with ``start_replica`` from here (it only prepares a smaller project of its own).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **extra}


def prepare_project(
    dest: Path,
    *,
    database_url: str,
    backoffice_url: str,
    redis_url: str | None,
    source: Path = ROOT,
    config_overrides: dict[str, Any] | None = None,
) -> Path:
    """Copy the project (its whole knowledge base) to ``dest``, point it at the shared services and train its NLU
    once, so replicas start without racing to train."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("config.yml", "domain.yml", "endpoints.yml"):
        if (source / name).exists():
            shutil.copy(source / name, dest / name)
    for name in ("data", "actions", "knowledge_base"):
        if (source / name).exists():
            shutil.copytree(source / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((dest / "config.yml").read_text(encoding="utf-8"))
    config["database"] = {"url": database_url}
    if redis_url:
        config["redis"] = {"url": redis_url, "prefix": f"bench-{uuid.uuid4().hex[:10]}"}
    forms = config.setdefault("forms", {})
    forms["submission"] = {**(forms.get("submission") or {}), "url": f"{backoffice_url}/submissions"}
    # one client address sends everything: the per-address limit meant for the internet would refuse it
    config["server"] = {**(config.get("server") or {}), "rate_per_minute": 10_000_000, "rate_burst": 1_000_000}
    for key, value in (config_overrides or {}).items():
        config[key] = value
    (dest / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "assistant", "train", "--project", str(dest)],
        check=True, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]


@contextlib.contextmanager
def backoffice_process(log_dir: Path) -> Iterator[str]:
    """The demo back office (``python -m connectors.backoffice_demo``) in its own process, as a real one would be:
    in the load generator's process it would share that process's interpreter lock with the client."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (log_dir / "backoffice.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "connectors.backoffice_demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the demo back office did not start")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def index_cache_dir(project: Path) -> Path:
    """Where the project's knowledge index keeps passage vectors by content hash (``knowledge.index_dir``/cache)."""
    config = yaml.safe_load((project / "config.yml").read_text(encoding="utf-8"))
    index_dir = Path((config.get("knowledge") or {}).get("index_dir") or "var/index")
    return (index_dir if index_dir.is_absolute() else project / index_dir) / "cache"


def load_vector_cache(project: Path, saved: Path) -> None:
    """Seed the project's vector cache from an earlier run: publishing then embeds only what changed."""
    if saved.is_dir():
        shutil.copytree(saved, index_cache_dir(project), dirs_exist_ok=True)


def save_vector_cache(project: Path, saved: Path) -> None:
    cache = index_cache_dir(project)
    if cache.is_dir():
        shutil.copytree(cache, saved, dirs_exist_ok=True)


def start_replica(
    project: Path, *, port: int | None = None, env: dict[str, str] | None = None, timeout_s: float = 900.0
) -> Replica:
    """``gov-assistant serve`` for ``project`` in a new process on loopback ``port`` (a free one by default), with
    ``env`` added to the child's environment; returns once ``/readyz`` answers 200."""
    port = port or free_port()
    log_path = project / f"replica-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "assistant", "serve", "--project", str(project), "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, env=child_env(**(env or {})), stdout=log, stderr=subprocess.STDOUT,
        )
    replica = Replica(f"http://127.0.0.1:{port}", port, process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replica :{port} exited with {process.returncode}:\n{replica.log_tail(4000)}")
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=5).status_code == 200:
                return replica
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    replica.kill()
    raise RuntimeError(f"replica :{port} not ready after {timeout_s:.0f} s:\n{replica.log_tail(4000)}")
