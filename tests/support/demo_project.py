"""A copy of the demo project for tests that need the real runtime, and a uvicorn server on a free local port.

The copy keeps the demo's domain, data and actions but only a few knowledge-base documents and FAQ entries, so
publishing them with the real embedding models takes seconds; every suite gets its own database.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def copy_demo_project(
    dest: Path, *, kb_docs: Iterable[str], faq_lines: int, database: str, backoffice_url: str
) -> dict[str, Any]:
    """Copy the demo project into ``dest`` and return its config (own SQLite database, forms submitted to the
    given back office, no retries) for the caller to adjust and pass to ``write_config``."""
    for name in ("domain.yml", "endpoints.yml"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, dest / name)
    for name in ("data", "actions"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    kb = dest / "knowledge_base"
    (kb / "docs").mkdir(parents=True)
    for doc in kb_docs:
        shutil.copy(ROOT / "knowledge_base" / "docs" / doc, kb / "docs" / doc)
    faq = (ROOT / "knowledge_base" / "faq.jsonl").read_text(encoding="utf-8").splitlines()[:faq_lines]
    (kb / "faq.jsonl").write_text("\n".join(faq) + "\n", encoding="utf-8")
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    config["database"] = {"url": f"sqlite:///var/{database}"}
    config.setdefault("forms", {}).setdefault("submission", {})
    config["forms"]["submission"].update({"url": f"{backoffice_url}/submissions", "timeout_s": 5, "max_retries": 0})
    return config


def write_config(dest: Path, config: dict[str, Any]) -> Path:
    (dest / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def serve(app: Any, ws: str = "websockets-sansio") -> LiveServer:
    """``app`` under uvicorn on a free loopback port, in a daemon thread of this process."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws=ws, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def stop(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=10)


@contextmanager
def served(app: Any, ws: str = "websockets-sansio") -> Iterator[LiveServer]:
    """``serve`` for the duration of a ``with`` block (a fixture's lifetime)."""
    live = serve(app, ws)
    try:
        yield live
    finally:
        stop(live)
