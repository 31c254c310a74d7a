"""A message with an id is taken once, even when the sender retries through another replica, and a turn cut off
by a dying process is finished by the retry (``Agent.handle`` checks the id under the conversation's lock)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "forms"))

from form_harness import build_agent, load_domain  # noqa: E402
from replicas import REDIS_TEST_URL  # noqa: E402

from assistant.agent import Agent, UserMessage  # noqa: E402
from assistant.config import RedisConfig  # noqa: E402
from assistant.events import Event, UserUttered  # noqa: E402
from assistant.forms.submission import UnconfiguredSubmitter  # noqa: E402
from assistant.redis_client import redis_client  # noqa: E402
from assistant.redis_locks import RedisLockStore  # noqa: E402
from assistant.store import SQLTrackerStore  # noqa: E402
from assistant.tracker import Tracker  # noqa: E402

ID = "110101199003077571"


class Crash(Exception):
    """Stands for the process dying: nothing after it runs."""


class DyingStore:
    """A tracker store whose process 'dies' at the ``die_at``-th append of the conversation (counting from now)."""

    def __init__(self, inner: SQLTrackerStore, die_at: int) -> None:
        self.inner = inner
        self.left = die_at

    def load(self, conversation_id: str) -> tuple[Event, ...]:
        return self.inner.load(conversation_id)

    def load_after(self, conversation_id: str, seq: int) -> tuple[tuple[Event, ...], int]:
        return self.inner.load_after(conversation_id, seq)

    def append(self, conversation_id: str, events: Sequence[Event], after: int | None = None) -> int:
        self.left -= 1
        if self.left == 0:
            raise Crash()
        return self.inner.append(conversation_id, events, after)

    def conversations(self) -> list[str]:
        return self.inner.conversations()


def say(agent: Agent, text: str, mid: str, cid: str = "c-1") -> list[str]:
    return [r.text or "" for r in asyncio.run(agent.handle(UserMessage(cid, text, message_id=mid)))]


def users(store: SQLTrackerStore, cid: str = "c-1") -> list[tuple[str, str | None]]:
    return [(e.text or "", e.message_id) for e in store.load(cid) if isinstance(e, UserUttered)]


def test_a_repeated_message_id_gets_the_first_replies_and_is_not_processed_again(tmp_path: Path) -> None:
    store = SQLTrackerStore(f"sqlite:///{tmp_path / 'c.db'}")
    agent = build_agent(store, UnconfiguredSubmitter())
    first = say(agent, "/id_card_renewal", "m1")
    assert any("姓名" in t for t in first)
    assert say(agent, "/id_card_renewal", "m1") == first
    # another replica (its own engine cache) over the same database says the same
    other = build_agent(SQLTrackerStore(f"sqlite:///{tmp_path / 'c.db'}"), UnconfiguredSubmitter())
    assert say(other, "/id_card_renewal", "m1") == first
    say(agent, "张三", "m2")
    # an old id re-sent after later messages still answers with its own replies, changing nothing
    assert say(other, "/id_card_renewal", "m1") == first
    assert users(store) == [("/id_card_renewal", "m1"), ("张三", "m2")]


@pytest.mark.parametrize("die_at", [2, 3])
def test_a_turn_cut_off_after_the_message_was_committed_is_finished_by_the_retry(tmp_path: Path, die_at: int) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    reference_store = SQLTrackerStore(f"sqlite:///{tmp_path / 'ref.db'}")
    reference = build_agent(reference_store, UnconfiguredSubmitter())
    say(reference, "/id_card_renewal", "m1")
    expected = say(reference, "张三", "m2")

    store = SQLTrackerStore(db)
    say(build_agent(store, UnconfiguredSubmitter()), "/id_card_renewal", "m1")
    # the first append of the turn (message + slots) is committed, then the process dies mid-turn
    dying = build_agent(DyingStore(SQLTrackerStore(db), die_at), UnconfiguredSubmitter())
    with pytest.raises(Crash):
        say(dying, "张三", "m2")
    assert users(store)[-1] == ("张三", "m2")
    # the client retries on another replica: the turn is finished, the message is not taken twice
    other = build_agent(SQLTrackerStore(db), UnconfiguredSubmitter())
    assert say(other, "张三", "m2") == expected
    assert users(store) == [("/id_card_renewal", "m1"), ("张三", "m2")]
    tracker = Tracker("c-1", (), load_domain().slot_defaults).with_events(store.load("c-1"))
    assert tracker.slots["applicant_name"] == "张三" and tracker.slots["requested_slot"] == "id_number"
    # and the conversation goes on normally
    assert any("联系电话" in t for t in say(other, f"身份证号{ID}", "m3"))


def test_the_same_message_sent_to_two_replicas_at_once_is_processed_once(tmp_path: Path, redis_prefix: str) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"

    async def main() -> tuple[list[str], list[str]]:
        clients = [redis_client(RedisConfig(url=REDIS_TEST_URL, prefix=redis_prefix)) for _ in range(2)]
        agents = [
            build_agent(SQLTrackerStore(db), UnconfiguredSubmitter()).with_store(
                SQLTrackerStore(db), RedisLockStore(c, redis_prefix)  # type: ignore[arg-type]
            )
            for c in clients
        ]
        try:
            await agents[0].handle(UserMessage("c-1", "/id_card_renewal", message_id="m1"))
            results = await asyncio.gather(
                *(a.handle(UserMessage("c-1", "张三", message_id="m2")) for a in agents)
            )
            return [[r.text or "" for r in replies] for replies in results]  # type: ignore[return-value]
        finally:
            for c in clients:
                await c.aclose()  # type: ignore[union-attr]

    a, b = asyncio.run(main())
    assert a == b and any("身份证号" in t for t in a)
    assert users(SQLTrackerStore(db)) == [("/id_card_renewal", "m1"), ("张三", "m2")]
