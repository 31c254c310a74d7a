"""Retention on SQLite and PostgreSQL: conversations of different ages written through the real stores, then
``Retention.run`` with the clock at NOW; every table is queried afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from privacy_helpers import ID_NUMBER, LINKED_TABLES, NOW, QUESTION, World, days_ago
from sqlalchemy import event
from sqlalchemy.engine import Engine

from assistant.privacy import PrivacyConfig
from assistant.retention import KEPT_OPEN_HANDOFF, KEPT_OPEN_TICKET, KEPT_PENDING_FORM, Retention

TABLES = LINKED_TABLES


def _populate(w: World) -> None:
    # expired: everything about it is older than 180 days
    w.conversation("old", days_ago(200), submitted=True)
    w.handoff_episode("old", days_ago(200))
    w.ticket("old", days_ago(199))
    w.feedback("old", days_ago(199))
    w.outbox("old", days_ago(200), "submitted")
    w.conversation("wechat:oOld", days_ago(300), message_id="9001")
    # recent, and old-but-active-again (feedback given last week)
    w.conversation("recent", days_ago(10))
    w.conversation("revived", days_ago(250))
    w.feedback("revived", days_ago(7))
    # old but kept: waiting for staff, an unanswered ticket, a form waiting for a retry
    w.conversation("queued", days_ago(190))
    w.handoff_episode("queued", days_ago(190), close=False)
    w.conversation("ticketed", days_ago(190))
    w.ticket("ticketed", days_ago(190), handled=False)
    w.conversation("retrying", days_ago(190), pending=True)
    w.conversation("outboxed", days_ago(190))
    w.outbox("outboxed", days_ago(190), "pending")
    # shared tables, by their own age
    w.seen("wx:msg:9001", days_ago(300))
    w.seen("wx:msg:9999", days_ago(1))
    w.unanswered(QUESTION, days_ago(200))
    w.unanswered("公积金能不能买车", days_ago(3))


def _retention(w: World, **config: Any) -> Retention:
    return Retention(w.engine, PrivacyConfig(**config), audit=w.accounts.audit, clock=lambda: NOW)


def test_old_conversations_go_whole_recent_and_open_ones_stay(engine: Engine, db_url: str) -> None:
    w = World.open(db_url, engine)
    _populate(w)
    before = {cid: w.rows_about(cid) for cid in ("recent", "revived", "queued", "ticketed", "retrying", "outboxed")}

    report = _retention(w).run(actor="tester", source="pytest")

    for cid in ("old", "wechat:oOld"):
        assert w.rows_about(cid) == dict.fromkeys(TABLES, 0), cid
    for cid, rows in before.items():
        assert w.rows_about(cid) == rows, cid
    assert report.conversations == 2
    assert report.deleted == {"dialogue_events": 15 + 9, "handoff_sessions": 1, "handoff_tickets": 1,
                              "citizen_feedback": 1, "form_outbox": 1, "inbound_seen": 1,
                              "kb_unanswered_questions": 1}
    assert report.kept == {KEPT_OPEN_HANDOFF: 1, KEPT_OPEN_TICKET: 1, KEPT_PENDING_FORM: 2}
    assert w.keys() == {"wx:msg:9999"}
    assert list(w.questions()) == ["公积金能不能买车"]

    [entry] = w.audit("retention.run")
    assert entry["actor"] == "tester" and entry["source"] == "pytest"
    assert entry["detail"]["deleted"] == report.deleted and entry["detail"]["conversations"] == 2
    assert ID_NUMBER not in str(entry)

    # a second run finds nothing more
    again = _retention(w).run()
    assert again.conversations == 0 and sum(again.deleted.values()) == 0


def test_dry_run_counts_what_a_run_deletes_and_changes_nothing(engine: Engine, db_url: str) -> None:
    w = World.open(db_url, engine)
    _populate(w)
    snapshot = {t: w.count(t) for t in (*TABLES, "inbound_seen", "kb_unanswered_questions")}

    dry = _retention(w).run(dry_run=True)

    assert {t: w.count(t) for t in snapshot} == snapshot
    assert w.audit("retention.run") == []
    real = _retention(w).run()
    assert (dry.conversations, dry.deleted, dry.kept) == (real.conversations, real.deleted, real.kept)
    assert dry.dry_run and not real.dry_run


def test_days_and_config_set_the_cutoff(engine: Engine, db_url: str) -> None:
    w = World.open(db_url, engine)
    w.conversation("a", days_ago(40))
    w.conversation("b", days_ago(20))
    w.unanswered(QUESTION, days_ago(40))
    assert _retention(w).run().conversations == 0  # default 180 days
    assert _retention(w, retention_days=30, unanswered_retention_days=60).run().deleted.get(
        "kb_unanswered_questions") == 0
    assert w.count("dialogue_events", "a") == 0 and w.count("dialogue_events", "b") > 0
    assert _retention(w).run(days=15).conversations == 1
    assert w.count("dialogue_events") == 0 and w.questions() == {}
    with pytest.raises(ValueError):
        _retention(w).run(days=0)


def test_a_failure_mid_batch_leaves_its_conversations_whole(sqlite_url: str) -> None:
    """One transaction per batch of conversations: the ticket delete of the second batch fails, so both of its
    conversations keep every row while the first batch is entirely gone."""
    from assistant.store import make_engine

    engine = make_engine(sqlite_url)
    w = World.open(sqlite_url, engine)
    for cid in ("c1", "c2", "c3", "c4"):
        w.conversation(cid, days_ago(300))
        w.ticket(cid, days_ago(300))
    w.handoff_episode("c4", days_ago(300))
    deletes: list[str] = []

    def fail_on_second_ticket_delete(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("DELETE FROM handoff_tickets"):
            deletes.append(statement)
            if len(deletes) == 2:
                raise RuntimeError("simulated crash")

    retention = Retention(w.engine, PrivacyConfig(), audit=w.accounts.audit, clock=lambda: NOW, batch_size=2)
    event.listen(engine, "before_cursor_execute", fail_on_second_ticket_delete)
    with pytest.raises(RuntimeError, match="simulated crash"):
        retention.run()
    event.remove(engine, "before_cursor_execute", fail_on_second_ticket_delete)
    assert w.rows_about("c1") == w.rows_about("c2") == dict.fromkeys(TABLES, 0)
    assert w.rows_about("c3") == {"dialogue_events": 9, "handoff_sessions": 0, "handoff_tickets": 1,
                                  "citizen_feedback": 0, "form_outbox": 0}
    assert w.rows_about("c4") == {"dialogue_events": 9, "handoff_sessions": 1, "handoff_tickets": 1,
                                  "citizen_feedback": 0, "form_outbox": 0}
    assert retention.run().conversations == 2  # the next run finishes the job
    assert w.rows_about("c3") == w.rows_about("c4") == dict.fromkeys(TABLES, 0)


def test_a_conversation_written_to_after_the_list_was_made_is_kept(sqlite_url: str) -> None:
    from assistant.store import make_engine

    engine = make_engine(sqlite_url)
    w = World.open(sqlite_url, engine)
    w.conversation("late", days_ago(300))
    retention = _retention(w)
    expired = retention.expired(days_ago(180))
    assert expired == ["late"]
    w.conversation("late", days_ago(0))  # the citizen writes while the run is going
    kept, counts = retention.delete_conversation("late", days_ago(180))
    assert kept == "active_again" and counts == {}
    assert w.count("dialogue_events", "late") == 18
