from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from assistant.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from assistant.store import InMemoryLockStore, InMemoryTrackerStore, SQLTrackerStore


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def store(request, tmp_path: Path):
    if request.param == "memory":
        yield InMemoryTrackerStore()
        return
    if request.param == "sqlite":
        store = SQLTrackerStore("sqlite:///var/t.db", base_dir=tmp_path)
    else:
        store = SQLTrackerStore(request.getfixturevalue("pg_url"))
    yield store
    store.engine.dispose()


def test_append_and_load_keep_order(store):
    events = [UserUttered("我要換身份證", {"intent": {"name": "renew_id_card"}}, timestamp=1.0),
              ActionExecuted("renew_form", timestamp=2.0), SlotSet("phone", "13912345678", timestamp=3.0)]
    assert store.append("a", events[:1]) == 1
    assert store.append("a", events[1:]) == 3
    store.append("b", [BotUttered("hi", timestamp=4.0)])
    assert store.load("a") == tuple(events)
    assert store.load_after("a", 1) == (tuple(events[1:]), 3)
    assert store.load_after("a", 3) == ((), 3)
    assert store.load("missing") == ()
    assert store.conversations() == ["a", "b"]


def test_sqlite_is_wal_and_durable_across_processes(tmp_path: Path):
    first = SQLTrackerStore("sqlite:///var/t.db", base_dir=tmp_path)
    first.append("c", [SlotSet("district", "东城区", timestamp=1.0)])
    with first.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    # a second engine (another process after a restart) sees the committed event
    second = SQLTrackerStore(f"sqlite:///{tmp_path / 'var' / 't.db'}")
    assert second.load("c") == (SlotSet("district", "东城区", timestamp=1.0),)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sequence_numbers_are_unique_under_concurrent_writers(tmp_path: Path, request, backend: str):
    url = f"sqlite:///{tmp_path / 'x.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    stores = [SQLTrackerStore(url) for _ in range(2)]
    errors: list[BaseException] = []

    def write(s: SQLTrackerStore, tag: str) -> None:
        try:
            for i in range(25):
                s.append("same", [SlotSet(tag, i, timestamp=float(i))])
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(s, f"w{n}")) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    loaded = stores[0].load("same")
    assert len(loaded) == 50
    for tag in ("w0", "w1"):
        assert [e.value for e in loaded if e.key == tag] == list(range(25))
    for s in stores:
        s.engine.dispose()


async def _hold(locks: InMemoryLockStore, cid: str, log: list[str], tag: str, delay: float) -> None:
    async with locks.lock(cid):
        log.append(f"{tag}:in")
        await asyncio.sleep(delay)
        log.append(f"{tag}:out")


def test_one_conversation_is_serialised_others_run_concurrently():
    async def main() -> tuple[list[str], list[str]]:
        locks = InMemoryLockStore()
        same: list[str] = []
        await asyncio.gather(_hold(locks, "c1", same, "a", 0.05), _hold(locks, "c1", same, "b", 0.0))
        different: list[str] = []
        await asyncio.gather(_hold(locks, "c1", different, "a", 0.05), _hold(locks, "c2", different, "b", 0.0))
        assert locks._locks == {}  # idle locks are forgotten
        return same, different

    same, different = asyncio.run(main())
    assert same == ["a:in", "a:out", "b:in", "b:out"]
    assert different == ["a:in", "b:in", "b:out", "a:out"]
