"""Alembic migrations of the assistant's own tables (dialogue events, staff accounts and audit log, handoff queue
and tickets, inbound dedupe; since 0002 also login attempts, the form outbox, citizen feedback, the dashboard's
roll-ups and the retention job's claim), applied from code like the knowledge base's (``knowledge/migrations``).

``migrate(url)`` brings both histories to head; the server runs it first thing at start. On PostgreSQL it holds a
session advisory lock meanwhile (``exclusive``), so replicas starting together migrate one after the other: the
first applies the revisions, the others find the database at head and change nothing. A replica killed while
holding the lock releases it with its connection. ``connectors.server.create_server_app`` keeps the same lock
while it opens every store, so the stores' own ``create_all`` (kept for tools and tests that open a store
without a server) and the first knowledge-base seeding are not raced either.

Stores call ``ensure_schema`` when they open (tests and tools open stores without a server): a quick read of the
version table, and a migration only when the database is behind.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent
# its own version table: the knowledge base keeps its history in kb_alembic_version in the same database
VERSION_TABLE = "assistant_alembic_version"
# one key for every schema change of this application in a database (pg_advisory_lock takes a bigint)
ADVISORY_LOCK_KEY = 0x67_6F_76_6D_69_67  # "govmig"

_migrated: set[str] = set()
_migrated_lock = threading.Lock()
# advisory locks this process holds, by database: ``exclusive`` is re-entrant within the process (a second
# session of ours asking for the lock would wait for ourselves forever)
_held: Counter[str] = Counter()
_held_lock = threading.Lock()


def _name(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _engine(url: str | Engine) -> tuple[Engine, bool]:
    from assistant.store import make_engine

    return (url, False) if isinstance(url, Engine) else (make_engine(url), True)


def migrate(url: str | Engine, *, knowledge: bool = True, revision: str = "head") -> None:
    """Upgrade the assistant's tables (and, with ``knowledge``, the knowledge base's) to ``revision``."""
    engine, own = _engine(url)
    try:
        with exclusive(engine):
            _upgrade(engine, revision)
            if knowledge:
                from knowledge.db import migrate as migrate_knowledge

                migrate_knowledge(engine)
    finally:
        if own:
            engine.dispose()


def ensure_schema(engine: Engine) -> None:
    """The assistant's tables exist at head: what a store calls when it opens. Checked once per database and
    process (an in-memory SQLite database is new with every engine, so it is checked every time)."""
    url = engine.url
    name = _name(engine)
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    with _migrated_lock:
        if name in _migrated and not in_memory:
            return
        if current_revision(engine) != head_revision():
            migrate(engine, knowledge=False)
        if not in_memory:
            _migrated.add(name)


@lru_cache(maxsize=1)
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


def head_revision() -> str | None:
    return _script().get_current_head()  # type: ignore[no-any-return]


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _upgrade(engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@contextmanager
def exclusive(url: str | Engine) -> Iterator[None]:
    """Held while the schema changes: a PostgreSQL session advisory lock (re-entrant within this process). On
    SQLite nothing: one host's file, whose writers SQLite serialises itself."""
    engine, own = _engine(url)
    name = _name(engine)
    try:
        if engine.dialect.name != "postgresql":
            yield
            return
        with _held_lock:
            mine = _held[name] > 0
            _held[name] += 1
        try:
            if mine:
                yield
                return
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                    conn.commit()
        finally:
            with _held_lock:
                _held[name] -= 1
    finally:
        if own:
            engine.dispose()
