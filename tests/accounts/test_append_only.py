"""The audit log is append-only in the database itself: UPDATE and DELETE (and TRUNCATE on PostgreSQL) are refused
by a trigger, whatever code runs them; new entries still go in; opening the accounts again keeps the triggers."""

from __future__ import annotations

from pathlib import Path

import pytest
from accounts_helpers import FAST_HASHER
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from assistant.accounts import Accounts
from assistant.audit import APPEND_ONLY_MESSAGE, action_for


def _check_append_only(accounts: Accounts, *, truncate: bool) -> None:
    accounts.audit("admin1", "kb.publish", "", "127.0.0.1", {"status": 200})
    accounts.audit("admin1", "user.create", "li", "127.0.0.1", {"role": "agent"})
    statements = ["UPDATE audit_log SET actor = 'someone-else'", "DELETE FROM audit_log",
                  "DELETE FROM audit_log WHERE action = 'kb.publish'"]
    if truncate:
        statements.append("TRUNCATE audit_log")
    for sql in statements:
        with pytest.raises(DBAPIError) as refused, accounts.engine.begin() as conn:
            conn.execute(text(sql))
        assert APPEND_ONLY_MESSAGE in str(refused.value), sql
    entries = accounts.audit_entries()
    assert [(e["actor"], e["action"]) for e in entries[:2]] == [("admin1", "user.create"), ("admin1", "kb.publish")]
    # a second server opening the same database keeps the triggers and adds none twice
    again = Accounts(accounts.engine, hasher=FAST_HASHER)
    again.audit("admin2", "user.disable", "li", "", {})
    with pytest.raises(DBAPIError), again.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET target = 'x'"))
    assert accounts.audit_entries()[0]["action"] == "user.disable"


def test_sqlite_refuses_update_and_delete(tmp_path: Path) -> None:
    accounts = Accounts(f"sqlite:///{tmp_path / 'audit.db'}", hasher=FAST_HASHER)
    _check_append_only(accounts, truncate=False)
    with accounts.engine.connect() as conn:
        names = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
    assert {"audit_log_no_update", "audit_log_no_delete"} <= names


def test_postgresql_refuses_update_delete_and_truncate(pg_url: str) -> None:
    accounts = Accounts(pg_url, hasher=FAST_HASHER)
    try:
        _check_append_only(accounts, truncate=True)
        with accounts.engine.connect() as conn:
            names = {r[0] for r in conn.execute(text(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"))}
        assert names == {"audit_log_no_change", "audit_log_no_truncate"}
    finally:
        accounts.engine.dispose()


def test_other_tables_of_the_accounts_stay_writable(tmp_path: Path) -> None:
    """The trigger is the audit log's only: sessions are revoked and users changed as usual."""
    accounts = Accounts(f"sqlite:///{tmp_path / 'a.db'}", hasher=FAST_HASHER)
    user = accounts.create_user("qian", "long enough pw", "agent")
    token, _, _ = accounts.open_session(user)
    accounts.reset_password("qian", "another long pw", by="admin1")
    assert accounts.resolve(token) is None
    assert accounts.set_role("qian", "editor", by="admin1").role == "editor"


@pytest.mark.parametrize(("method", "template", "action"), [
    ("POST", "/api/kb/publish", "kb.publish"),
    ("POST", "/api/kb/versions/{version_id}/rollback", "kb.rollback"),
    ("PUT", "/api/kb/documents/{doc_id}", "kb.document.update"),
    ("POST", "/api/kb/unanswered/handled", "kb.unanswered.handled"),
    ("POST", "/console/api/conversations/{cid}/close", "handoff.close"),
    # routes the table does not name: literal segments, /api dropped, the verb for PUT, PATCH and DELETE
    ("POST", "/api/dashboard/refresh", "dashboard.refresh"),
    ("DELETE", "/api/things/{id}", "things.delete"),
    ("PATCH", "/api/things/{id}/parts/{part}", "things.parts.update"),
])
def test_action_names(method: str, template: str, action: str) -> None:
    assert action_for(method, template) == action
