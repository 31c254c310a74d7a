"""Where conversations live: an append-only event log per conversation, and per-conversation locks.

``SQLTrackerStore`` keeps one row per event with a per-conversation sequence number (unique together), so
events are never reordered or lost, and each ``append`` is one committed transaction: a process killed right
after an action keeps that action's events. SQLite runs in WAL mode; PostgreSQL is chosen by URL.

An ``append`` given ``after`` (the sequence number the writer's tracker reflects) is fenced: its rows go right
after that event or nowhere (``ConversationMoved``), so a replica that stalled past its conversation lock's lease
cannot add a turn computed from a state another replica has since moved on from.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Float,
    Integer,
    String,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from assistant.events import Event, event_from_dict, event_to_dict
from assistant.migrations import ensure_schema
from knowledge.db import engine_options


class ConversationReset(LookupError):
    """The event at the sequence number a reader had reached is gone: the conversation was erased (privacy erase,
    retention) since, possibly by another process; or its first events are: retention trimmed its old sessions.
    The reader must start again from sequence number 0."""


class ConversationMoved(RuntimeError):
    """A fenced append found the conversation past the sequence number its writer expected: another writer (a
    replica that took the conversation's lock after this one's lease ran out) appended since. Nothing was written;
    the writer must reload the conversation before it writes again."""

    def __init__(self, conversation_id: str, expected: int) -> None:
        super().__init__(f"conversation {conversation_id}: written by another writer after event {expected}")
        self.conversation_id = conversation_id
        self.expected = expected


class TrackerStore(Protocol):
    def load(self, conversation_id: str) -> tuple[Event, ...]: ...

    def load_after(self, conversation_id: str, seq: int) -> tuple[tuple[Event, ...], int]:
        """Events after sequence number ``seq`` and the latest sequence number (0 when empty); raises
        ``ConversationReset`` when the event numbered ``seq`` no longer exists, or when events before it that
        this store handed out earlier do not (retention trimmed the conversation's old sessions)."""
        ...

    def append(self, conversation_id: str, events: Sequence[Event], after: int | None = None) -> int:
        """Durably appends; returns the new latest sequence number. With ``after``, the events go right after
        sequence number ``after`` or not at all: ``ConversationMoved`` when the conversation is past it (no events
        is then a no-op returning ``after``). Without it they go after whatever the tail is."""
        ...

    def conversations(self) -> list[str]: ...


class InMemoryTrackerStore:
    def __init__(self) -> None:
        self._events: dict[str, list[Event]] = {}

    def load(self, conversation_id: str) -> tuple[Event, ...]:
        return tuple(self._events.get(conversation_id, ()))

    def load_after(self, conversation_id: str, seq: int) -> tuple[tuple[Event, ...], int]:
        events = self._events.get(conversation_id, [])
        if seq > len(events):
            raise ConversationReset(conversation_id)
        return tuple(events[seq:]), len(events)

    def append(self, conversation_id: str, events: Sequence[Event], after: int | None = None) -> int:
        if after is not None and not events:
            return after
        log = self._events.setdefault(conversation_id, [])
        if after is not None and len(log) != after:
            raise ConversationMoved(conversation_id, after)
        log.extend(events)
        return len(log)

    def conversations(self) -> list[str]:
        return sorted(self._events)


class _Base(DeclarativeBase):
    pass


class EventRow(_Base):
    __tablename__ = "dialogue_events"
    __table_args__ = (UniqueConstraint("conversation_id", "seq", name="uq_dialogue_events_conversation_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[float] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL sync in WAL survives a killed process (not a power cut)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str, base_dir: Path | None = None) -> Engine:
    """An engine for ``url``; a relative SQLite path is resolved against ``base_dir`` and its folder created."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    # bounded connect timeout and pre-ping: an outage fails requests fast and heals without a restart
    engine = create_engine(url, json_serializer=lambda o: json.dumps(o, ensure_ascii=False), **engine_options(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class SQLTrackerStore:
    def __init__(
        self, url: str | Engine, base_dir: Path | None = None, retries: int = 20, tail_cache: int = 100_000
    ) -> None:
        self._engine = url if isinstance(url, Engine) else make_engine(url, base_dir)
        self._retries = retries
        self._tails: OrderedDict[str, int] = OrderedDict()
        # each conversation's first sequence number when the caching reader (the agent: one per store) last read
        # it with ``load_after``: a tracker built from events that retention has since trimmed away is reloaded
        # (``ConversationReset``) instead of showing them for as long as it stays cached
        self._heads: OrderedDict[str, int] = OrderedDict()
        self._tail_cache = tail_cache
        # the table comes from the Alembic migrations (assistant/migrations), as at server start
        ensure_schema(self._engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def load(self, conversation_id: str) -> tuple[Event, ...]:
        # a one-off read (the handoff service, the form outbox): it must not move the first sequence number the
        # caching reader's tracker was built from
        return self._read(conversation_id, 0, track_head=False)[0]

    def load_after(self, conversation_id: str, seq: int) -> tuple[tuple[Event, ...], int]:
        return self._read(conversation_id, seq, track_head=True)

    def _read(self, conversation_id: str, seq: int, *, track_head: bool) -> tuple[tuple[Event, ...], int]:
        table = EventRow.__table__
        mine = table.c.conversation_id == conversation_id
        # the first sequence number comes along (one index lookup): it moves up only when retention trims
        head = select(func.min(table.c.seq)).where(mine).scalar_subquery().label("head")
        # from ``seq`` itself, not after it: a reader's last event missing means the history it holds was erased
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table.c.seq, table.c.payload, head).where(mine, table.c.seq >= max(seq, 1)).order_by(table.c.seq)
            ).all()
        if seq > 0 and (not rows or rows[0].seq != seq or self._trimmed(conversation_id, rows[0].head)):
            self.forget(conversation_id)
            raise ConversationReset(conversation_id)
        if rows and track_head:
            self._remember_head(conversation_id, rows[0].head)
        if seq > 0:
            rows = rows[1:]
        if not rows:
            latest = seq if seq else self._latest_seq(conversation_id)
            self._remember_tail(conversation_id, latest)
            return (), latest
        self._remember_tail(conversation_id, rows[-1].seq)
        return tuple(event_from_dict(r.payload) for r in rows), rows[-1].seq

    def _latest_seq(self, conversation_id: str) -> int:
        table = EventRow.__table__
        with self._engine.connect() as conn:
            latest = conn.scalar(select(func.max(table.c.seq)).where(table.c.conversation_id == conversation_id))
        return int(latest or 0)

    def forget(self, conversation_id: str) -> None:
        """Drop what this process remembers of the conversation (after it was erased or trimmed)."""
        self._tails.pop(conversation_id, None)
        self._heads.pop(conversation_id, None)

    def _trimmed(self, conversation_id: str, head: int) -> bool:
        """The conversation now starts later than when this process last read it. Unknown (evicted from this
        bounded memory, which is larger than the agent's tracker cache) counts as not trimmed."""
        known = self._heads.get(conversation_id)
        return known is not None and head > known

    def _remember_head(self, conversation_id: str, head: int) -> None:
        self._heads[conversation_id] = head
        self._heads.move_to_end(conversation_id)
        while len(self._heads) > self._tail_cache:
            self._heads.popitem(last=False)

    def _remember_tail(self, conversation_id: str, seq: int) -> None:
        self._tails[conversation_id] = seq
        self._tails.move_to_end(conversation_id)
        while len(self._tails) > self._tail_cache:
            self._tails.popitem(last=False)

    def append(self, conversation_id: str, events: Sequence[Event], after: int | None = None) -> int:
        if after is not None:
            return self._append_after(conversation_id, events, after)
        if not events:
            return self._latest_seq(conversation_id)
        payloads = [event_to_dict(e) for e in events]
        # the last sequence number this process saw is only a hint: another replica may have written since,
        # in which case the unique constraint refuses the rows and we read the real tail and retry
        hint = self._tails.get(conversation_id)
        for attempt in range(self._retries):
            start = hint if hint is not None else self._latest_seq(conversation_id)
            try:
                seq = self._insert(conversation_id, start, payloads)
            except IntegrityError:
                if attempt == self._retries - 1:
                    raise
                hint = None
                # another writer won this sequence number; a short random pause keeps two from colliding again
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
                continue
            self._remember_tail(conversation_id, seq)
            return seq
        raise AssertionError("unreachable")

    def _append_after(self, conversation_id: str, events: Sequence[Event], after: int) -> int:
        if not events:
            return after
        try:
            seq = self._insert(conversation_id, after, [event_to_dict(e) for e in events])
        except IntegrityError:
            # a row already holds after + 1: someone wrote since the writer's tracker was loaded. No retry at
            # another place: the events were computed from the state at ``after``
            self.forget(conversation_id)
            raise ConversationMoved(conversation_id, after) from None
        self._remember_tail(conversation_id, seq)
        return seq

    def _insert(self, conversation_id: str, start: int, payloads: list[dict[str, Any]]) -> int:
        rows = [
            {
                "conversation_id": conversation_id,
                "seq": start + i,
                "type": p["event"],
                "timestamp": float(p.get("timestamp") or 0.0),
                "payload": p,
            }
            for i, p in enumerate(payloads, start=1)
        ]
        # one transaction per append: committed (durable in WAL) before the engine goes on
        with self._engine.begin() as conn:
            conn.execute(insert(EventRow.__table__), rows)
        return start + len(rows)

    def conversations(self) -> list[str]:
        with Session(self._engine) as session:
            return list(session.scalars(select(EventRow.conversation_id).distinct().order_by(EventRow.conversation_id)))


class LockStore(Protocol):
    def lock(self, conversation_id: str) -> Any:
        """An async context manager held while one message of the conversation is processed."""
        ...


class InMemoryLockStore:
    """asyncio locks for one process; a Redis lock store with the same ``lock`` seam serves several replicas."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiters: dict[str, int] = {}

    @asynccontextmanager
    async def lock(self, conversation_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        self._waiters[conversation_id] = self._waiters.get(conversation_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            # forget idle locks so a million conversations do not keep a million locks
            self._waiters[conversation_id] -= 1
            if self._waiters[conversation_id] == 0:
                del self._waiters[conversation_id]
                del self._locks[conversation_id]
