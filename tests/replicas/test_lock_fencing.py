"""A replica that stalls past its conversation lock's lease cannot interleave a stale turn.

Two agents stand for two replicas: one PostgreSQL database, one Redis key prefix, a 300 ms lease. Replica A runs in
a thread with its own event loop; a hook of its turn blocks that loop (as a GC pause or a blocking call would), so
its lease renewal cannot run and the lease really expires in Redis. Replica B then takes the lock and runs a turn
of the same conversation. When A wakes, its next write is refused and its message fails with 503; the log holds
B's whole turn and nothing A computed after the stall, and A's message sent again is taken exactly once."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "forms"))

from form_harness import build_agent  # noqa: E402
from replicas import REDIS_TEST_URL  # noqa: E402

from assistant.actions import Action, ActionContext  # noqa: E402
from assistant.agent import Agent, UserMessage  # noqa: E402
from assistant.config import RedisConfig  # noqa: E402
from assistant.domain import Domain  # noqa: E402
from assistant.errors import ApiError  # noqa: E402
from assistant.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered  # noqa: E402
from assistant.forms.submission import UnconfiguredSubmitter  # noqa: E402
from assistant.redis_client import redis_client  # noqa: E402
from assistant.redis_locks import RedisLockStore  # noqa: E402
from assistant.store import SQLTrackerStore  # noqa: E402
from assistant.tracker import Tracker  # noqa: E402

LEASE_S = 0.3
# how long a stalled replica waits for the other to commit before giving up (the test then fails on its asserts)
STALL_LIMIT_S = 60.0
ID = "110101199003077571"
CID = "c-1"
FORM_ACTION = "id_card_appointment"


@dataclass
class Stall:
    """Blocks the calling thread (and so its event loop) from the moment the turn reaches it until released."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    released_in_time: bool | None = None

    def block(self) -> None:
        self.reached.set()
        self.released_in_time = self.released.wait(STALL_LIMIT_S)


def stall_in_slot_hook(stall: Stall, message_id: str) -> Callable[[Domain, Tracker], list[Event]]:
    """A slot hook stalling the turn of ``message_id`` before it stores anything."""

    def hook(_domain: Domain, tracker: Tracker) -> list[Event]:
        last = tracker.latest_user_event()
        if last is not None and last.message_id == message_id:
            stall.block()
        return []

    return hook


@dataclass
class StallingAction:
    """An action that stalls (once) before doing its work: a slow back-office call made synchronously."""

    inner: Action
    stall: Stall
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.inner.name

    async def run(self, ctx: ActionContext) -> list[Event]:
        if not self.stall.reached.is_set():
            self.stall.block()
        return await self.inner.run(ctx)


@contextmanager
def store(db: str) -> Iterator[SQLTrackerStore]:
    s = SQLTrackerStore(db)
    try:
        yield s
    finally:
        s.engine.dispose()


async def handle(agent: Agent, prefix: str, text: str, mid: str) -> list[str]:
    """One message through ``agent`` holding a lock on Redis with a client of this event loop's own."""
    client = redis_client(RedisConfig(url=REDIS_TEST_URL, prefix=prefix))
    assert client is not None
    # the same agent (and its cached trackers) each time; a Redis client belongs to the event loop it runs on
    agent.locks = RedisLockStore(client, prefix, lease_s=LEASE_S)
    try:
        return [r.text or "" for r in await agent.handle(UserMessage(CID, text, message_id=mid))]
    finally:
        await client.aclose()


def shape(events: tuple[Event, ...]) -> list[tuple[Any, ...]]:
    """What a turn did, without the wall-clock timestamps."""
    out: list[tuple[Any, ...]] = []
    for e in events:
        if isinstance(e, UserUttered):
            out.append(("user", e.text, e.message_id))
        elif isinstance(e, BotUttered):
            out.append(("bot", e.text))
        elif isinstance(e, ActionExecuted):
            out.append(("action", e.action_name))
        elif isinstance(e, SlotSet):
            out.append(("slot", e.key, e.value))
        else:
            out.append((type(e).__name__,))
    return out


def serial(tmp_path: Path, messages: list[tuple[str, str]]) -> tuple[list[list[str]], list[tuple[Any, ...]]]:
    """The replies and the log of the same messages handled one after the other by one process."""
    with store(f"sqlite:///{tmp_path / f'serial-{len(messages)}.db'}") as s:
        agent = build_agent(s, UnconfiguredSubmitter())
        replies = [
            [r.text or "" for r in asyncio.run(agent.handle(UserMessage(CID, text, message_id=mid)))]
            for text, mid in messages
        ]
        return replies, shape(s.load(CID))


def overtake(a: Agent, b: Agent, stall: Stall, prefix: str, stalled: tuple[str, str],
             other: tuple[str, str]) -> BaseException | None:
    """A handles ``stalled`` in a thread of its own until it stalls; B handles ``other`` (waiting for A's lease to
    run out); then A goes on. Returns what A's message raised."""
    outcome: list[BaseException | None] = []

    def replica_a() -> None:
        try:
            asyncio.run(handle(a, prefix, *stalled))
            outcome.append(None)
        except BaseException as err:  # reported by the test
            outcome.append(err)

    thread = threading.Thread(target=replica_a)
    thread.start()
    try:
        assert stall.reached.wait(STALL_LIMIT_S)
        asyncio.run(handle(b, prefix, *other))
    finally:
        stall.released.set()
        thread.join(STALL_LIMIT_S)
    assert stall.released_in_time and not thread.is_alive()
    return outcome[0]


def assert_moved(err: BaseException | None) -> None:
    assert isinstance(err, ApiError), err
    assert err.status == 503 and err.code == "conversation_moved"
    assert err.headers == {"Retry-After": "1"} and err.message_zh and err.message_en


def test_a_turn_stalled_before_it_stored_anything_is_refused_and_its_retry_is_taken_once(
    tmp_path: Path, pg_url: str, redis_prefix: str
) -> None:
    first, late, overtaking, after = ("/id_card_renewal", "m1"), ("李四", "m2"), ("张三", "m3"), (f"身份证号{ID}", "m4")
    with store(pg_url) as a_store, store(pg_url) as b_store:
        a = build_agent(a_store, UnconfiguredSubmitter())
        b = build_agent(b_store, UnconfiguredSubmitter())
        stall = Stall()
        a.slot_hooks = (*a.slot_hooks, stall_in_slot_hook(stall, "m2"))
        asyncio.run(handle(a, redis_prefix, *first))  # A has the conversation cached, as a replica would

        err = overtake(a, b, stall, redis_prefix, late, overtaking)

        assert_moved(err)
        # nothing of A's turn: the log is B's turn right after the first, as if A's message had never come
        _, expected_log = serial(tmp_path, [first, overtaking])
        assert shape(b_store.load(CID)) == expected_log
        # the channel sends A's message again (to B): it is new there, handled once, as after B's turn
        replies, expected_log = serial(tmp_path, [first, overtaking, late, after])
        assert asyncio.run(handle(b, redis_prefix, *late)) == replies[2]
        assert asyncio.run(handle(b, redis_prefix, *late)) == replies[2]
        # and A carries on from the conversation as it now is
        assert asyncio.run(handle(a, redis_prefix, *after)) == replies[3]
        assert shape(b_store.load(CID)) == expected_log


def test_a_turn_stalled_in_an_action_keeps_what_it_stored_before_and_loses_the_rest(
    pg_url: str, redis_prefix: str
) -> None:
    first, late, overtaking = ("/id_card_renewal", "m1"), ("张三", "m2"), (f"身份证号{ID}", "m3")
    with store(pg_url) as a_store, store(pg_url) as b_store:
        a = build_agent(a_store, UnconfiguredSubmitter())
        b = build_agent(b_store, UnconfiguredSubmitter())
        asyncio.run(handle(a, redis_prefix, *first))
        stall = Stall()
        a.actions.register(StallingAction(a.actions.get(FORM_ACTION), stall))

        err = overtake(a, b, stall, redis_prefix, late, overtaking)

        assert_moved(err)
        # A's message and the slot it filled were stored while A held the lock; the form's next question, which
        # A computed from the state before B's turn, was not: B's whole turn follows them
        log = shape(b_store.load(CID))
        message = log.index(("user", "张三", "m2"))
        assert log[message + 1 : message + 3] == [("slot", "applicant_name", "张三"), ("user", f"身份证号{ID}", "m3")]
        b_turn = log[message + 2 :]
        assert b_turn[-1] == ("action", "action_listen") and b_turn.count(("action", "action_listen")) == 1
        assert any(e[0] == "bot" and "联系电话" in e[1] for e in b_turn)
        # sent again, the message is known: answered with what it got (nothing) and not processed a second time
        assert asyncio.run(handle(b, redis_prefix, *late)) == []
        assert shape(b_store.load(CID)) == log
