"""Handoff latency: a citizen's message to the agent's screen, and the agent's reply back to the citizen.

    OMP_NUM_THREADS=1 .venv/bin/python bench/handoff.py [--agents 20] [--waiting 200] [--rounds 10]

A real server (uvicorn in its own process on a loopback port, the demo project, SQLite) with ``--waiting`` citizens connected to the
web chat WebSocket, each queued for a person (``/request_human``); ``--agents`` staff logged in, each with the
console WebSocket open, each claiming one conversation. Then every agent and its citizen exchange ``--rounds``
messages at once while the other waiting citizens keep writing too, each about once every 2.5 s (every message
is broadcast to every console):

    citizen -> agent   from the citizen's WebSocket send to the message on the holding agent's console WebSocket
    agent -> citizen   from the agent's REST reply to the push on the citizen's WebSocket
    round trip         both legs, as the citizen sees it

Loopback only; every wait is bounded (--timeout). The NLU model is reused from the project's models/ when
present (trained otherwise); the knowledge base is not loaded (no message goes to it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
import uvicorn  # noqa: E402
import yaml  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

PASSWORD = "bench-password-123"


def make_project(dest: Path) -> Path:
    for name in ("domain.yml", "config.yml"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "data", dest / "data")
    if (ROOT / "models").is_dir():
        shutil.copytree(ROOT / "models", dest / "models", symlinks=True)
    config = yaml.safe_load((dest / "config.yml").read_text(encoding="utf-8"))
    config["database"] = {"url": "sqlite:///var/bench.db"}
    config["server"] = {"rate_per_minute": 10_000_000, "rate_burst": 1_000_000, "timeout_s": 60}
    config["channels"] = {"rest": {}, "webchat": {}}
    handoff = config.setdefault("handoff", {})
    handoff["service_hours"] = {"always_open": True}
    (dest / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return dest


class Citizen:
    def __init__(self, ws: ClientConnection, session_id: str) -> None:
        self.ws, self.session_id = ws, session_id
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.replies: dict[str, asyncio.Future[None]] = {}
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            data = json.loads(raw)
            if data.get("type") == "bot" and data.get("reply_to") in self.replies:
                self.replies.pop(data["reply_to"]).set_result(None)
            elif data.get("type") == "push":
                for m in data.get("messages", []):
                    fut = self.waiters.pop(m.get("text") or "", None)
                    if fut is not None and not fut.done():
                        fut.set_result(time.perf_counter())

    async def say(self, text: str) -> None:
        mid = uuid.uuid4().hex
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.replies[mid] = answered
        await self.ws.send(json.dumps({"type": "message", "message_id": mid, "text": text}))
        await answered

    def expect(self, text: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[text] = fut
        return fut


class Agent:
    def __init__(self, ws: ClientConnection, token: str) -> None:
        self.ws, self.token = ws, token
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            data = json.loads(raw)
            if data.get("type") == "message" and data["item"]["kind"] == "user":
                fut = self.waiters.pop(data["item"]["text"], None)
                if fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())

    def expect(self, text: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[text] = fut
        return fut


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def bounded(aw: Awaitable[Any], timeout: float) -> Any:
    return await asyncio.wait_for(aw, timeout)


async def run(host: str, agents_n: int, waiting_n: int, rounds: int, timeout: float) -> dict[str, list[float]]:
    base = f"http://{host}"
    limits = httpx.Limits(max_connections=agents_n + 10)
    async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as http:
        tokens = []
        for i in range(agents_n):
            r = await http.post("/console/api/login", json={"username": f"bench{i}", "password": PASSWORD})
            r.raise_for_status()
            tokens.append(r.json()["token"])
        agents = []
        for token in tokens:
            ws = await connect(f"ws://{host}/console/ws", additional_headers={"Authorization": f"Bearer {token}"},
                               max_size=2**22, max_queue=None)
            json.loads(await ws.recv())  # hello
            agents.append(Agent(ws, token))
        citizens = []
        sem = asyncio.Semaphore(20)

        async def join(i: int) -> Citizen:
            async with sem:
                sid = f"bench{uuid.uuid4().hex[:20]}"
                ws = await connect(f"ws://{host}/webchat/ws?session_id={sid}", max_queue=None)
                c = Citizen(ws, sid)
                await bounded(c.say("/request_human"), timeout)
                return c

        t0 = time.perf_counter()
        citizens = list(await asyncio.gather(*(join(i) for i in range(waiting_n))))
        queued_s = time.perf_counter() - t0
        r = await http.get("/console/api/queue", headers={"Authorization": f"Bearer {tokens[0]}"})
        waiting = [s for s in r.json()["sessions"] if s["state"] == "waiting"]
        print(f"{len(waiting)} conversations waiting (queued in {queued_s:.1f} s); {len(agents)} agents online")
        pairs = []
        for agent, citizen in zip(agents, citizens, strict=False):
            r = await http.post(f"/console/api/conversations/{citizen.session_id}/claim",
                                headers={"Authorization": f"Bearer {agent.token}"})
            r.raise_for_status()
            pairs.append((agent, citizen))
        others = citizens[len(pairs):]
        print(f"{len(pairs)} claimed, {len(others)} still waiting and writing")

        legs: dict[str, list[float]] = {"citizen_to_agent": [], "agent_to_citizen": [], "round_trip": []}

        async def exchange(i: int, agent: Agent, citizen: Citizen) -> None:
            for k in range(rounds):
                question, answer = f"问题{i}-{k}：社保卡怎么补办？", f"答复{i}-{k}：请带身份证到服务大厅办理。"
                seen = agent.expect(question)
                back = citizen.expect(answer)
                start = time.perf_counter()
                await citizen.ws.send(json.dumps({"type": "message", "message_id": uuid.uuid4().hex, "text": question}))
                on_screen = await bounded(seen, timeout)
                sent = time.perf_counter()
                r = await http.post(f"/console/api/conversations/{citizen.session_id}/messages",
                                    headers={"Authorization": f"Bearer {agent.token}"}, json={"text": answer})
                r.raise_for_status()
                arrived = await bounded(back, timeout)
                legs["citizen_to_agent"].append(on_screen - start)
                legs["agent_to_citizen"].append(arrived - sent)
                legs["round_trip"].append(arrived - start)

        async def chatter(c: Citizen, k: int) -> None:
            await c.ws.send(json.dumps({"type": "message", "message_id": uuid.uuid4().hex, "text": f"还要等多久？{k}"}))

        async def background() -> None:
            # each waiting citizen writes about once every 2.5 s: a fifth of them every half second
            for k in range(rounds * 2):
                await asyncio.gather(*(chatter(c, k) for c in others[k % 5 :: 5]))
                await asyncio.sleep(0.5)

        t0 = time.perf_counter()
        await asyncio.gather(background(), *(exchange(i, a, c) for i, (a, c) in enumerate(pairs)))
        print(f"{len(legs['round_trip'])} exchanges in {time.perf_counter() - t0:.1f} s")
        for ws in [a.ws for a in agents] + [c.ws for c in citizens]:
            await ws.close()
        return legs


def build_app(project: Path) -> Any:
    from assistant.app import create_app
    from connectors.console.wiring import attach_console, bind_channels
    from connectors.server import build_runtime

    runtime = build_runtime(project, with_knowledge=False)
    attach_console(runtime)
    app = create_app(runtime, runtime.config.server, runtime.config.channels)
    bind_channels(runtime, app.state.channels)
    return app


def serve_child(project: Path, port: int) -> None:
    """The server process: the client's work must not share its interpreter (and GIL) with the server."""
    app = build_app(project)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets-sansio")


def start_server(project: Path) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(project), "--port", str(port)],
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError("the server process exited")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return f"127.0.0.1:{port}", child
        except httpx.HTTPError:
            time.sleep(0.2)
    child.kill()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--waiting", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds any single wait may take")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve, args.port)
        return
    if args.waiting < args.agents:
        parser.error("--waiting must be at least --agents")

    from assistant.accounts import Accounts
    from assistant.config import load_config
    from knowledge.db import resolve_url

    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        accounts = Accounts(resolve_url(load_config(project).database.url, project))
        for i in range(args.agents):
            accounts.create_user(f"bench{i}", PASSWORD, "agent", f"坐席{i}")
        t0 = time.perf_counter()
        host, child = start_server(project)
        print(f"server ready in {time.perf_counter() - t0:.1f} s (separate process, loopback)")
        try:
            legs = asyncio.run(run(host, args.agents, args.waiting, args.rounds, args.timeout))
        finally:
            child.terminate()
            child.wait(timeout=20)
    print(f"\n{args.agents} agents, {args.waiting} waiting conversations, {args.rounds} rounds per agent (ms):")
    for name, values in legs.items():
        ms = [v * 1000 for v in values]
        print(f"  {name:17s} n={len(ms):4d}  p50={statistics.median(ms):7.1f}  p99={pct(ms, 99):7.1f}  max={max(ms):7.1f}")


if __name__ == "__main__":
    main()
