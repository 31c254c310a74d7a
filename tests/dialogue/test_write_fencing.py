"""Fenced appends (``TrackerStore.append(..., after=seq)``): the events go right after the sequence number the
writer read, or nowhere. A second store over the same database stands for another replica."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.events import ActionExecuted, BotUttered, Event, SlotSet, UserUttered
from assistant.store import ConversationMoved, InMemoryTrackerStore, SQLTrackerStore, TrackerStore

TURN: list[Event] = [
    UserUttered("我要换身份证", {"intent": {"name": "id_card_renewal"}}, message_id="m1", timestamp=1.0),
    ActionExecuted("utter_ask_name", timestamp=2.0),
    BotUttered("请问您的姓名？", timestamp=3.0),
]


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TrackerStore, TrackerStore]]:
    """Two stores over one conversation log: two engines on one database (the in-memory store is its own)."""
    if request.param == "memory":
        memory = InMemoryTrackerStore()
        yield memory, memory
        return
    url = f"sqlite:///{tmp_path / 't.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    stores = (SQLTrackerStore(url), SQLTrackerStore(url))
    yield stores
    for store in stores:
        store.engine.dispose()


def slot(key: str, value: str, ts: float) -> SlotSet:
    return SlotSet(key, value, timestamp=ts)


def test_a_stale_expected_tail_is_refused_and_writes_nothing(replicas: tuple[TrackerStore, TrackerStore]) -> None:
    a, b = replicas
    assert a.append("c", TURN) == 3
    # the other replica writes after event 3 while this one still holds a tracker of events 1-3
    assert b.append("c", [slot("applicant_name", "张三", 4.0)], after=3) == 4
    stale = [slot("applicant_name", "李四", 5.0), ActionExecuted("action_listen", timestamp=6.0)]
    with pytest.raises(ConversationMoved) as moved:
        a.append("c", stale, after=3)
    assert moved.value.conversation_id == "c" and moved.value.expected == 3
    # three rows were tried (4, 5, 6) and only 4 collided: none of them is kept
    with pytest.raises(ConversationMoved):
        a.append("c", [slot("x", "1", 7.0), slot("y", "2", 8.0), slot("z", "3", 9.0)], after=2)
    assert a.load("c") == (*TURN, slot("applicant_name", "张三", 4.0))
    assert b.load_after("c", 0)[1] == 4


def test_the_current_expected_tail_writes_right_after_it(replicas: tuple[TrackerStore, TrackerStore]) -> None:
    a, b = replicas
    assert a.append("c", TURN[:1], after=0) == 1
    # a's remembered tail (1) is out of date after b's write; the expected tail b's tracker reflects is what counts
    assert b.append("c", TURN[1:], after=1) == 3
    assert a.append("c", [slot("phone", "13912345678", 4.0)], after=3) == 4
    assert b.load("c") == (*TURN, slot("phone", "13912345678", 4.0))
    # nothing to write: nothing to fence either, the tracker still reflects the same event
    assert a.append("c", [], after=4) == 4
    # another conversation's numbering is its own
    assert a.append("other", TURN[:1], after=0) == 1


def test_without_an_expected_tail_events_go_after_whatever_was_written(
    replicas: tuple[TrackerStore, TrackerStore],
) -> None:
    a, b = replicas
    assert a.append("c", TURN[:2]) == 2
    assert b.append("c", TURN[2:]) == 3
    # a last saw the tail at 2: an unfenced append (a staff message recorded under the lock) still lands after 3
    assert a.append("c", [slot("applicant_name", "张三", 4.0)]) == 4
    assert a.append("c", []) == 4
    assert b.load("c") == (*TURN, slot("applicant_name", "张三", 4.0))
