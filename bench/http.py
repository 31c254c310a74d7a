"""HTTP round-trip benchmark: the real server under uvicorn on a loopback port, driven by httpx.

    OMP_NUM_THREADS=1 .venv/bin/python bench/http.py [--project .] [--requests 300] [--conversations 100]

1. Concurrency 1: p50/p99 of ``POST /webhooks/rest/webhook`` for a rule answer ("你好"), one conversation.
2. Sustained: ``--conversations`` concurrent conversations, each posting rule answers back to back for
   ``--seconds`` (or until ``--max-messages``); messages/s and p50/p99 latency.

The project is served by ``gov-assistant serve`` in a child process (uvicorn), against a copy of the project and its
database in a temporary directory (a fresh one: the knowledge base is seeded and published at start) so the
benchmark's conversations do not land in the project's trackers.
Targets (issue 5): p50 <= 10 ms and p99 <= 30 ms at concurrency 1; Rasa 3.6 measured p50 46 ms here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would shadow the standard library's
# `http` package (which httpx and uvicorn import): drop the folder, put the repository root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
import yaml  # noqa: E402

RULES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "server" / "rules.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def bench_project(source: Path, workdir: Path) -> Path:
    """A copy of the project whose server limits admit a benchmark (one client address, many requests)."""
    dest = workdir / "project"
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".venv", "__pycache__", "tests", "test-artifacts", ".git", "var"))
    config = yaml.safe_load((dest / "config.yml").read_text(encoding="utf-8"))
    config["server"] = {**(config.get("server") or {}), "rate_per_minute": 10_000_000, "rate_burst": 1_000_000}
    (dest / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if not any("rules:" in p.read_text(encoding="utf-8") for p in (dest / "data").rglob("*.yml")):
        # the benchmark measures a rule answer: without dialogue rules in the project, use the server tests' few
        shutil.copy(RULES, dest / "data" / "bench_rules.yml")
        print(f"note: {source / 'data'} has no rules; using {RULES.relative_to(RULES.parents[3])}")
    return dest


def start_server(project: Path, port: int, log: Any) -> subprocess.Popen[bytes]:
    """``gov-assistant serve`` in its own process, so the load generator does not share the server's core."""
    cmd = [sys.executable, "-m", "assistant", "serve", "--project", str(project), "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


async def post(client: httpx.AsyncClient, sender: str, text: str) -> float:
    started = time.perf_counter()
    resp = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    elapsed = time.perf_counter() - started
    if resp.status_code != 200 or not resp.json():
        raise RuntimeError(f"unexpected answer {resp.status_code}: {resp.text[:200]}")
    return elapsed * 1000


async def layer(url: str, method: str, path: str, body: dict[str, Any] | None, n: int) -> list[float]:
    """Latency of a lighter endpoint, to tell the HTTP stack's share from the NLU's and the engine's."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        out = []
        for i in range(n + 20):
            started = time.perf_counter()
            resp = await client.request(method, path, json=body)
            resp.raise_for_status()
            if i >= 20:
                out.append((time.perf_counter() - started) * 1000)
        return out


async def sequential(url: str, n: int, text: str, turns: int) -> list[float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for _ in range(20):  # warm-up: connection, caches
            await post(client, "bench-warm-" + uuid.uuid4().hex[:8], text)
        out = []
        for i in range(n):
            # a new conversation every `turns` messages, as citizens' conversations are short
            sender = f"bench-seq-{i // turns}-{uuid.uuid4().hex[:4] if i % turns == 0 else ''}"
            out.append(await post(client, sender, text))
        return out


async def sustained(url: str, conversations: int, seconds: float, max_messages: int, text: str, turns: int) -> tuple[list[float], float]:
    limits = httpx.Limits(max_connections=conversations, max_keepalive_connections=conversations)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def conversation(i: int) -> None:
            sent = 0
            while time.perf_counter() < stop_at and len(latencies) < max_messages:
                if sent % turns == 0:
                    sender = f"bench-conv-{i}-{uuid.uuid4().hex[:8]}"
                latencies.append(await post(client, sender, text))
                sent += 1

        started = time.perf_counter()
        await asyncio.gather(*(conversation(i) for i in range(conversations)))
        wall = time.perf_counter() - started
    return latencies, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--text", default="你好")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-messages", type=int, default=5000)
    parser.add_argument("--turns", type=int, default=10, help="messages per conversation before a new one starts")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        project = bench_project(args.project.resolve(), Path(tmp))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        with open(Path(tmp) / "server.log", "wb") as log:
            proc = start_server(project, port, log)
            try:
                try:
                    wait_ready(url, proc)
                except RuntimeError:
                    log.flush()
                    print((Path(tmp) / "server.log").read_text(encoding="utf-8", errors="replace")[-3000:])
                    raise
                print(f"server ready in {time.perf_counter() - t0:.1f} s (project {args.project}, pid {proc.pid})")
                floor = asyncio.run(layer(url, "GET", "/healthz", None, args.requests))
                nlu = asyncio.run(layer(url, "POST", "/model/parse", {"text": args.text}, args.requests))
                print(f"layers, concurrency 1: GET /healthz p50 {statistics.median(floor):.1f} ms (HTTP floor), "
                      f"POST /model/parse p50 {statistics.median(nlu):.1f} ms (+ NLU)")
                seq = asyncio.run(sequential(url, args.requests, args.text, args.turns))
                print(f"REST webhook, concurrency 1, {len(seq)} requests of {args.text!r} ({args.turns} per conversation): "
                      f"p50 {statistics.median(seq):.1f} ms, p99 {percentile(seq, 99):.1f} ms, mean {statistics.fmean(seq):.1f} ms "
                      "(targets p50 <= 10, p99 <= 30; Rasa 3.6 p50 46)")
                lat, wall = asyncio.run(
                    sustained(url, args.conversations, args.seconds, args.max_messages, args.text, args.turns)
                )
                print(f"sustained, {args.conversations} concurrent conversations: {len(lat)} messages in {wall:.1f} s = "
                      f"{len(lat) / wall:.0f} messages/s, p50 {statistics.median(lat):.1f} ms, p99 {percentile(lat, 99):.1f} ms")
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
