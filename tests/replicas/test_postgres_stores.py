"""Every store of the assistant on PostgreSQL, each opened the way two replicas open it (two store objects, two
engines, one database), after the migrations. The knowledge base on PostgreSQL is covered by
tests/knowledge/test_kb_store.py; the whole server on PostgreSQL by test_replicas_*.py."""

from __future__ import annotations

import asyncio
import threading
import time

from argon2 import PasswordHasher

from assistant.accounts import Accounts
from assistant.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from assistant.handoff.store import WAITING, WITH_AGENT, HandoffStore
from assistant.migrations import current_revision, head_revision, migrate
from assistant.store import InMemoryLockStore, SQLTrackerStore
from connectors.dedupe import SqlDeduplicator

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_tracker_store_two_writers_interleave_without_losing_or_reordering(pg_url: str) -> None:
    migrate(pg_url)
    a, b = SQLTrackerStore(pg_url), SQLTrackerStore(pg_url)
    assert current_revision(a.engine) == head_revision()

    def write(store: SQLTrackerStore, who: str) -> None:
        for i in range(30):
            store.append("c", [UserUttered(f"{who}{i}", {}, "rest", f"{who}{i}"), BotUttered(f"re {who}{i}")])

    threads = [threading.Thread(target=write, args=(s, w)) for s, w in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = b.load("c")
    assert len(events) == 120
    users = [e.text for e in events if isinstance(e, UserUttered)]
    assert sorted(users) == sorted([f"a{i}" for i in range(30)] + [f"b{i}" for i in range(30)])
    # each writer's appends stay whole and in its own order
    assert [u for u in users if u.startswith("a")] == [f"a{i}" for i in range(30)]
    for i, e in enumerate(events):
        if isinstance(e, UserUttered):
            assert isinstance(events[i + 1], BotUttered) and events[i + 1].text == f"re {e.text}"
    more, seq = a.load_after("c", 118)
    assert seq == 120 and len(more) == 2
    a.append("c", [SlotSet("applicant_name", "张三"), ActionExecuted("action_listen")])
    assert b.load("c")[-2] == SlotSet("applicant_name", "张三")
    assert a.conversations() == ["c"]


def test_accounts_sessions_and_audit_are_shared_by_replicas(pg_url: str) -> None:
    migrate(pg_url)
    a = Accounts(pg_url, hasher=FAST)
    b = Accounts(pg_url, hasher=FAST)
    user = a.create_user("wang.li", "correct-horse-9", "agent", "王丽")
    assert b.authenticate("wang.li", "correct-horse-9") == user
    assert b.authenticate("wang.li", "wrong-password-1") is None
    token, csrf, _ = a.open_session(user)
    resolved = b.resolve(token)
    assert resolved is not None and resolved[0] == user and resolved[1] == csrf
    a.close_session(resolved[2])
    assert b.resolve(token) is None
    b.audit("wang.li", "handoff.claim", "c-1", "127.0.0.1", {"queue": "default"})
    actions = [e["action"] for e in a.audit_entries()]
    assert "handoff.claim" in actions and "user.create" in actions


def test_handoff_queue_and_tickets_on_postgresql(pg_url: str) -> None:
    migrate(pg_url)
    a, b = HandoffStore(pg_url), HandoffStore(pg_url)
    now = time.time()
    first = a.open("c-1", "rest", "requested", "default", now)
    assert first is not None and first.state == WAITING
    # one open episode per conversation, whichever replica asks
    assert b.open("c-1", "rest", "requested", "default", now) is None
    assert [s.conversation_id for s in b.waiting()] == ["c-1"]

    # two agents on two replicas claim at once: exactly one wins
    results: list[object] = []
    barrier = threading.Barrier(2)

    def claim(store: HandoffStore, agent: str) -> None:
        barrier.wait()
        results.append(store.claim(first.id, agent, time.time()))

    threads = [threading.Thread(target=claim, args=(s, n)) for s, n in ((a, "li"), (b, "zhao"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if r is not None]
    assert len(won) == 1 and a.get(first.id).state == WITH_AGENT  # type: ignore[union-attr]

    t1 = a.create_ticket("c-2", "rest", "下班后留言", now, "T")
    t2 = b.create_ticket("c-3", "rest", "另一条留言", now, "T")
    assert t1.ref != t2.ref and t1.ref.startswith("T")
    assert {t.ref for t in b.tickets()} == {t1.ref, t2.ref}
    assert a.handle_ticket(t1.ref, "li", time.time()) is not None
    assert [t.ref for t in b.tickets()] == [t2.ref]


def test_inbound_dedupe_claims_once_across_replicas(pg_url: str) -> None:
    migrate(pg_url)
    a, b = SqlDeduplicator(pg_url), SqlDeduplicator(pg_url)
    assert a.claim("wechat:msg-1") is True
    assert b.claim("wechat:msg-1") is False
    b.release("wechat:msg-1")
    assert a.claim("wechat:msg-1") is True


def test_in_memory_locks_still_serialise_one_process() -> None:
    """The one-process default keeps working next to the Redis store (same seam)."""
    locks = InMemoryLockStore()
    inside = 0
    worst = 0

    async def turn() -> None:
        nonlocal inside, worst
        async with locks.lock("c"):
            inside += 1
            worst = max(worst, inside)
            await asyncio.sleep(0.001)
            inside -= 1

    async def main() -> None:
        await asyncio.gather(*(turn() for _ in range(20)))

    asyncio.run(main())
    assert worst == 1
