"""Load benchmark: many concurrent scripted conversations against two replicas over PostgreSQL (+ Redis).

    OMP_NUM_THREADS=1 .venv/bin/python bench/load.py [--conversations 200] [--duration 300]
        [--database-url postgresql+psycopg://...] [--redis-url redis://127.0.0.1:6379/0 | --no-redis]

Everything runs on loopback: two ``gov-assistant serve`` processes over one PostgreSQL database (by default a
fresh database on the local test server, created here and dropped at the end) and Redis when it answers, the demo
back office in this process, and an asyncio httpx client. ``--conversations`` citizens talk at once for
``--duration`` seconds; each message goes to the other replica than the previous one. A citizen runs one script
after another, each a new web-chat conversation: small talk, policy questions, or filling the social-security-card
loss report through to submission. A message is sent with an id and, on a 5xx, a timeout or a refused connection,
sent again with the same id (to the other replica) until acknowledged, up to ``--attempts`` times.

Printed: messages/s, latency p50/p95/p99 (acknowledged sends; and per message including retries), errors by kind,
and a consistency check that reads the database: for every conversation, each acknowledged message id is stored
exactly once as a user message and nothing else is stored (zero lost, zero duplicated).

The load is bounded: at most ``--conversations`` requests in flight, at most ``--duration`` seconds of sending (plus
the replies in flight), and at most ``--max-messages`` messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# Run as a script, this file's folder comes first on sys.path and bench/http.py would shadow the standard library's
# `http` package (which httpx imports): drop the folder, put the repository root instead.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402

from bench.demo_citizen import loss_report_answer  # noqa: E402
from bench.replica_launcher import (  # noqa: E402
    Replica,
    backoffice_process,
    load_vector_cache,
    prepare_project,
    save_vector_cache,
    start_replica,
)

DEFAULT_PG = os.environ.get("GOV_ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEFAULT_REDIS = os.environ.get("GOV_ASSISTANT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = "load-"

SMALL_TALK = ["你好", "你是谁", "你能做什么", "谢谢", "好的", "再见", "在吗", "今天办事的人多吗"]
POLICY = [
    "身份证过期了怎么换", "身份证丢了怎么办", "社保卡丢了怎么补办", "居住证怎么办理需要什么材料",
    "公积金怎么提取", "租房可以提取公积金吗", "办身份证要多少钱", "市民中心几点上班", "驾驶证到期怎么换",
    "营业执照怎么办", "出生登记要带什么", "户口迁移怎么办理",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    attempt_ms: list[float] = field(default_factory=list)  # each acknowledged request
    message_ms: list[float] = field(default_factory=list)  # each acknowledged message, retries included
    errors: Counter[str] = field(default_factory=Counter)
    acked: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))  # conversation -> ids
    unacked: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    scripts: Counter[str] = field(default_factory=Counter)
    forms_submitted: int = 0
    messages: int = 0
    requests: int = 0
    in_window: int = 0  # acknowledged before the end of --duration
    elapsed: float = 0.0


class Citizen:
    def __init__(self, index: int, clients: list[httpx.AsyncClient], stats: Stats, args: argparse.Namespace,
                 stop_at: float) -> None:
        self.index = index
        self.clients = clients
        self.stats = stats
        self.args = args
        self.stop_at = stop_at
        self.rng = random.Random(args.seed * 100_003 + index)
        self.turn = index  # which replica takes the next message: alternates per message
        self.session = ""
        self.counter = 0

    def _next_client(self) -> httpx.AsyncClient:
        client = self.clients[self.turn % len(self.clients)]
        self.turn += 1
        return client

    def _time_left(self) -> bool:
        return time.monotonic() < self.stop_at and self.stats.messages < self.args.max_messages

    async def say(self, text_: str) -> str | None:
        """Send one message until acknowledged; the reply text, or None when it never was."""
        self.counter += 1
        mid = f"{self.session}-{self.counter}"
        self.stats.messages += 1
        body = {"session_id": self.session, "message_id": mid, "text": text_}
        first = time.monotonic()
        for attempt in range(self.args.attempts):
            if attempt and time.monotonic() > self.stop_at + self.args.drain_s:
                break  # bounded: after the run, in-flight messages get ``--drain-s`` more seconds, not minutes
            client = self._next_client()
            started = time.monotonic()
            self.stats.requests += 1
            try:
                resp = await client.post("/webchat/messages", json=body, headers={"X-Session-Id": self.session})
            except httpx.TimeoutException:
                kind = "timeout"
            except httpx.TransportError as err:
                kind = f"transport:{type(err).__name__}"
            else:
                if resp.status_code == 200:
                    now = time.monotonic()
                    if now <= self.stop_at:
                        self.stats.in_window += 1
                    self.stats.attempt_ms.append((now - started) * 1000)
                    self.stats.message_ms.append((now - first) * 1000)
                    self.stats.acked[self.session].append(mid)
                    if attempt:
                        self.stats.errors["retried_then_acknowledged"] += 1
                    return "\n".join(m.get("text") or "" for m in resp.json().get("messages", []))
                kind = f"http_{resp.status_code}:{_code(resp)}"
                if resp.status_code < 500 and resp.status_code != 429:
                    self.stats.errors[kind] += 1
                    break  # our request is wrong: sending it again changes nothing
            self.stats.errors[kind] += 1
            await asyncio.sleep(min(0.2 * 2**attempt, 2.0) * self.rng.uniform(0.5, 1.0))
        self.stats.unacked[self.session].append(mid)
        return None

    async def think(self) -> None:
        if self.args.think_s > 0:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.args.think_s)

    async def run(self) -> None:
        while self._time_left():
            self.session = f"{PREFIX}{self.index}-{uuid.uuid4().hex[:12]}"
            self.counter = 0
            kind = self.rng.choices(["small_talk", "policy", "form"], weights=[3, 4, 3])[0]
            self.stats.scripts[kind] += 1
            if kind == "small_talk":
                for msg in self.rng.sample(SMALL_TALK, 3):
                    if not self._time_left() or await self.say(msg) is None:
                        break
                    await self.think()
            elif kind == "policy":
                for msg in ["你好", *self.rng.sample(POLICY, 3), "谢谢"]:
                    if not self._time_left() or await self.say(msg) is None:
                        break
                    await self.think()
            else:
                await self.fill_form()

    async def fill_form(self) -> None:
        reply = await self.say("/social_security_card_loss")
        for _ in range(10):
            if reply is None or not self._time_left():
                return
            answer = loss_report_answer(reply)
            if answer is None:
                return  # an unexpected turn (a digression answered): the script ends here
            await self.think()
            reply = await self.say(answer)
            if answer == "确认":
                if reply is not None and "受理编号" in reply:
                    self.stats.forms_submitted += 1
                return


def _code(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("code", ""))
    except ValueError:
        return ""


async def drive(urls: list[str], args: argparse.Namespace) -> Stats:
    stats = Stats()
    limits = httpx.Limits(max_connections=args.conversations, max_keepalive_connections=args.conversations)
    clients = [httpx.AsyncClient(base_url=u, timeout=args.request_timeout, limits=limits) for u in urls]
    stop_at = time.monotonic() + args.duration
    try:
        citizens = [Citizen(i, clients, stats, args, stop_at) for i in range(args.conversations)]

        async def report() -> None:
            while True:
                await asyncio.sleep(15)
                elapsed = time.monotonic() - stats.started
                print(f"  {elapsed:5.0f} s: {len(stats.attempt_ms)} acknowledged, "
                      f"{len(stats.attempt_ms) / elapsed:.1f} msg/s, errors {sum(stats.errors.values())}", flush=True)

        reporter = asyncio.create_task(report())

        # citizens start over the first two seconds, not all in the same millisecond
        async def staggered(c: Citizen) -> None:
            await asyncio.sleep(c.rng.uniform(0, 2))
            await c.run()

        await asyncio.gather(*(staggered(c) for c in citizens))
        reporter.cancel()
    finally:
        for c in clients:
            await c.aclose()
    stats.elapsed = time.monotonic() - stats.started
    return stats


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc): what a message costs, whatever else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def warm_up(urls: list[str]) -> None:
    """One small talk, one policy question and one form start per replica: lazily built parts (sentence encoders,
    caches) load here, not in the measured minutes."""
    async with httpx.AsyncClient(timeout=300) as client:
        for url in urls:
            session = f"warmup-{uuid.uuid4().hex[:12]}"
            for i, msg in enumerate(["你好", POLICY[0], "/social_security_card_loss"]):
                resp = await client.post(f"{url}/webchat/messages",
                                         json={"session_id": session, "message_id": f"w{i}", "text": msg})
                resp.raise_for_status()


def consistency(database_url: str, stats: Stats) -> dict[str, int]:
    """Compare what the database holds with what the client was told: per conversation and message id."""
    engine = create_engine(database_url)
    stored: dict[str, Counter[str]] = defaultdict(Counter)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT conversation_id, payload FROM dialogue_events WHERE type = 'user' AND conversation_id LIKE :p"),
            {"p": PREFIX + "%"},
        )
        for cid, payload in rows:
            stored[cid][str(payload.get("message_id"))] += 1
    engine.dispose()
    out = Counter[str]()
    conversations = set(stats.acked) | set(stats.unacked) | set(stored)
    for cid in conversations:
        acked = Counter(stats.acked.get(cid, []))
        unacked = set(stats.unacked.get(cid, []))
        have = stored.get(cid, Counter())
        out["conversations"] += 1
        out["acknowledged"] += sum(acked.values())
        out["stored"] += sum(have.values())
        for mid in acked:
            if have[mid] == 0:
                out["lost"] += 1
            elif have[mid] > 1:
                out["duplicated"] += have[mid] - 1
        for mid, n in have.items():
            if mid not in acked:
                # a message never acknowledged may or may not have been stored; more than once is a duplicate
                out["stored_unacknowledged" if mid in unacked else "unexpected"] += 1
                if n > 1:
                    out["duplicated"] += n - 1
        if sum(acked.values()) != sum(1 for mid in have if mid in acked):
            out["conversations_mismatched"] += 1
    for key in ("lost", "duplicated", "unexpected", "conversations_mismatched", "stored_unacknowledged"):
        out.setdefault(key, 0)
    return dict(out)


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"bench_load_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def redis_if_available(url: str | None) -> str | None:
    if not url:
        return None
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url
    except Exception as err:
        print(f"note: Redis not reachable at {url} ({type(err).__name__}): replicas run without it "
              "(in-process locks: consecutive messages on different replicas are then not serialised)")
        return None


def _loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"loopback only: {url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=200, help="citizens talking at once")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of sending")
    parser.add_argument("--max-messages", type=int, default=200_000, help="stop sending after this many")
    parser.add_argument("--think-s", type=float, default=1.0, help="mean pause between a reply and the next message")
    parser.add_argument("--attempts", type=int, default=6, help="sends of one message before giving up on it")
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--drain-s", type=float, default=60.0,
                        help="after --duration, messages in flight may be retried this much longer")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--database-url", default=None,
                        help="an existing PostgreSQL database to use (default: a fresh one on the local test server)")
    parser.add_argument("--admin-url", default=DEFAULT_PG, help="where the fresh database is created and dropped")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--vector-cache", type=Path, default=None,
                        help="keep the knowledge base's passage vectors here between runs (start-up embeds only "
                             "what is new; the first run on 2 busy cores spends minutes embedding the whole KB)")
    args = parser.parse_args()
    for url in (args.database_url or args.admin_url, args.redis_url):
        if url:
            _loopback(url)
    redis_url = None if args.no_redis else redis_if_available(args.redis_url)

    db_context = contextlib.nullcontext(args.database_url) if args.database_url else fresh_database(args.admin_url)
    with db_context as database_url, tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, \
            backoffice_process(Path(tmp)) as backoffice_url:
        t0 = time.monotonic()
        project = prepare_project(Path(tmp) / "project", database_url=database_url, backoffice_url=backoffice_url,
                                  redis_url=redis_url)
        print(f"project trained in {time.monotonic() - t0:.0f} s; database {make_url(database_url).database}, "
              f"Redis {'yes' if redis_url else 'no'}", flush=True)
        if args.vector_cache is not None:
            load_vector_cache(project, args.vector_cache)
        replicas: list[Replica] = []
        try:
            # the first seeds and publishes the knowledge base; the others find it published
            for _ in range(args.replicas):
                t1 = time.monotonic()
                replicas.append(start_replica(project))
                if args.vector_cache is not None and len(replicas) == 1:
                    save_vector_cache(project, args.vector_cache)
                print(f"replica {replicas[-1].url} ready in {time.monotonic() - t1:.0f} s", flush=True)
            print(f"load: {args.conversations} conversations for {args.duration:.0f} s, think {args.think_s} s, "
                  f"{len(replicas)} replicas alternating per message", flush=True)
            urls = [r.url for r in replicas]
            asyncio.run(warm_up(urls))
            cpu_before = [cpu_seconds(r.process.pid) for r in replicas]
            load_before = os.getloadavg()[0]
            stats = asyncio.run(drive(urls, args))
            cpu_used = sum(cpu_seconds(r.process.pid) for r in replicas) - sum(cpu_before)
            print(f"machine load average (1 min): {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end "
                  f"({os.cpu_count()} CPUs; other processes share them); replicas used {cpu_used:.0f} CPU s = "
                  f"{1000 * cpu_used / max(1, stats.requests):.0f} CPU ms per request "
                  f"({stats.requests} requests)", flush=True)
            # let the last writes land before reading them back
            time.sleep(1)
            check = consistency(database_url, stats)
        finally:
            for r in replicas:
                r.stop()
            logs = save_logs(replicas)
        print_report(stats, check, args.duration)
        print(f"server-side (replica logs, kept in {logs}): {server_side(replicas)}")
        if check["lost"] or check["duplicated"] or check["unexpected"]:
            raise SystemExit(1)


def save_logs(replicas: list[Replica]) -> Path:
    out = Path(tempfile.gettempdir()) / f"bench-load-logs-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    for r in replicas:
        if r.log_path.exists():
            (out / r.log_path.name).write_bytes(r.log_path.read_bytes())
    return out


def server_side(replicas: list[Replica]) -> dict[str, int]:
    """What the replicas logged about trouble: outages answered 503 (by dependency and exception), conversation
    locks lost while held (an event loop stalled past the lease), turns that timed out."""
    seen = Counter[str]()
    for r in replicas:
        for line in r.log_tail(50_000_000).splitlines():
            if "assistant.outage" in line and " unavailable: " in line:
                seen["503 " + line.split("WARNING assistant.outage: ", 1)[-1].strip()] += 1
            elif "conversation lock lost while held" in line:
                seen["lock lost while held"] += 1
            elif '" 504 ' in line:
                seen["504 timeout"] += 1
    return dict(seen)


def print_report(stats: Stats, check: dict[str, int], duration: float) -> None:
    elapsed = stats.elapsed or time.monotonic() - stats.started
    n = len(stats.attempt_ms)
    print(f"\nmessages acknowledged during the {duration:.0f} s run: {stats.in_window} = "
          f"{stats.in_window / duration:.1f} messages/s")
    print(f"messages acknowledged in all: {n} in {elapsed:.1f} s (the last replies and retries included) "
          f"({stats.messages} sent; scripts {dict(stats.scripts)}; forms submitted {stats.forms_submitted} "
          "with a reference number)")
    a, m = stats.attempt_ms, stats.message_ms
    print(f"latency per request (ms): p50 {percentile(a, 50):.0f}, p95 {percentile(a, 95):.0f}, "
          f"p99 {percentile(a, 99):.0f}, max {max(a, default=float('nan')):.0f}")
    print(f"latency per message incl. retries (ms): p50 {percentile(m, 50):.0f}, p95 {percentile(m, 95):.0f}, "
          f"p99 {percentile(m, 99):.0f}")
    print(f"errors by kind: {dict(stats.errors) or 'none'}; never acknowledged: "
          f"{sum(len(v) for v in stats.unacked.values())}")
    print(f"consistency (database vs acknowledgements): {check}")
    verdict = "OK" if not (check["lost"] or check["duplicated"] or check["unexpected"]) else "FAILED"
    print(f"zero lost, zero duplicated: {verdict}")


if __name__ == "__main__":
    main()
