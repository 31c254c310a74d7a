"""The tracker store after an erase by someone else: a reader holding an erased tail is told to start again
(``ConversationReset``) and the next append numbers the new history from 1, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from assistant.events import BotUttered, UserUttered
from assistant.store import ConversationReset, EventRow, InMemoryTrackerStore, SQLTrackerStore, make_engine


def test_sql_store_detects_an_erased_tail(engine: Engine, db_url: str) -> None:
    store = SQLTrackerStore(engine)
    assert store.append("c", [UserUttered("我叫欧阳娜娜"), BotUttered("您好")]) == 2
    assert store.load_after("c", 2) == ((), 2)
    assert store.load_after("c", 1)[1] == 2

    other = make_engine(db_url)  # another process erases the conversation
    with other.begin() as conn:
        conn.execute(delete(EventRow.__table__).where(EventRow.__table__.c.conversation_id == "c"))
    other.dispose()

    with pytest.raises(ConversationReset):
        store.load_after("c", 2)
    assert store.load_after("c", 0) == ((), 0)
    assert store.append("c", [UserUttered("你好")]) == 1  # the tail cache forgot the erased 2
    with engine.connect() as conn:
        assert list(conn.execute(select(EventRow.__table__.c.seq).where(EventRow.__table__.c.conversation_id == "c"))
                    .scalars()) == [1]


def test_sql_store_forget_drops_the_cached_tail(sqlite_url: str) -> None:
    store = SQLTrackerStore(sqlite_url)
    store.append("c", [UserUttered("a"), UserUttered("b")])
    with store.engine.begin() as conn:
        conn.execute(delete(EventRow.__table__))
    store.forget("c")  # what an in-process erase does instead of waiting for the next read
    assert store.append("c", [UserUttered("c")]) == 1


def test_in_memory_store_detects_a_shorter_history() -> None:
    store = InMemoryTrackerStore()
    store.append("c", [UserUttered("a")])
    assert store.load_after("c", 1) == ((), 1)
    with pytest.raises(ConversationReset):
        store.load_after("c", 2)
