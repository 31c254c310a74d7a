"""The assistant's Alembic migrations: they build exactly the tables the models describe, adopt a database the
stores created before migrations existed, and replicas migrating at once on PostgreSQL do not race."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text

from assistant.accounts import _Base as AccountsBase
from assistant.analytics import EVENTS_INDEX
from assistant.analytics import _Base as AnalyticsBase
from assistant.audit import _Base as AuditBase
from assistant.feedback import _Base as FeedbackBase
from assistant.forms.outbox import _Base as OutboxBase
from assistant.handoff.store import _Base as HandoffBase
from assistant.login_limits import _Base as LoginBase
from assistant.migrations import VERSION_TABLE, current_revision, ensure_schema, head_revision, migrate
from assistant.retention import RUNS
from assistant.store import _Base as StoreBase
from assistant.store import make_engine
from connectors.dedupe import _Base as DedupeBase

ROOT = Path(__file__).resolve().parents[2]
TABLES = {"dialogue_events", "staff_users", "staff_sessions", "audit_log", "handoff_sessions", "handoff_tickets",
          "inbound_seen",
          # 0002
          "login_attempts", "form_outbox", "citizen_feedback", "analytics_daily", "analytics_daily_intents",
          "privacy_runs"}


def model_metadata() -> MetaData:
    """The models of the migrated tables, gathered from their packages."""
    md = MetaData()
    bases = (StoreBase, AccountsBase, AuditBase, HandoffBase, DedupeBase, LoginBase, OutboxBase, FeedbackBase,
             AnalyticsBase)
    for metadata in [b.metadata for b in bases] + [RUNS.metadata]:
        for table in metadata.tables.values():
            if table.name in TABLES and table.name not in md.tables:
                table.to_metadata(md)
    assert set(md.tables) == TABLES
    return md


def differences(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diffs = compare_metadata(ctx, model_metadata())
    finally:
        engine.dispose()

    def table_of(diff: Any) -> str | None:
        op = diff[0] if isinstance(diff, list) else diff
        for item in op[1:]:
            name = getattr(item, "name", None) if not isinstance(item, str) else None
            table = getattr(item, "table", None)
            if table is not None:
                return str(table.name)
            if hasattr(item, "columns") and name:
                return str(name)
        return str(op[2]) if len(op) > 2 and isinstance(op[2], str) else None

    def ddl_only(diff: Any) -> bool:
        # the dashboard's index on dialogue_events is plain DDL (assistant.analytics.EVENTS_INDEX), not in a model
        op = diff[0] if isinstance(diff, list) else diff
        return op[0] == "remove_index" and getattr(op[1], "name", None) == EVENTS_INDEX

    # tables of other packages (still created with create_all) and the version tables are not ours to compare
    return [d for d in diffs if table_of(d) in TABLES and not ddl_only(d)]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_migrations_build_the_tables_the_models_describe(db_url: str) -> None:
    migrate(db_url)
    assert differences(db_url) == []
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        names = set(inspect(engine).get_table_names())
        assert TABLES | {VERSION_TABLE, "kb_alembic_version", "kb_documents"} <= names
    finally:
        engine.dispose()
    migrate(db_url)  # at head: nothing to do, no error


def test_a_database_the_stores_created_before_migrations_is_adopted_with_its_data(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        model_metadata().create_all(engine)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO inbound_seen (key, seen_at) VALUES ('k1', CURRENT_TIMESTAMP)"))
        assert current_revision(engine) is None
        ensure_schema(engine)
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM inbound_seen")) == 1
    finally:
        engine.dispose()


MIGRATE = """
import sys
from assistant.migrations import migrate
migrate(sys.argv[1])
print("ok")
"""


def test_replicas_starting_together_migrate_one_after_the_other(pg_url: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, pg_url], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-2000:] for _, err in outs]
    assert differences(pg_url) == []
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text(f"SELECT count(*) FROM {VERSION_TABLE}")) == 1
    finally:
        engine.dispose()
