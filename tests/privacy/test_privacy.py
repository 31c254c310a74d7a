"""Export and erase of one conversation (SQLite and PostgreSQL), and the engine after an erase: the citizen who
writes again starts afresh, in the process that had the conversation cached."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from privacy_helpers import ID_NUMBER, LINKED_TABLES, NAME, PHONE, QUESTION, World, days_ago
from sqlalchemy import MetaData, Table, func, select
from sqlalchemy.engine import Engine

from assistant.privacy import Privacy, PrivacyError, export_json

CID = "wechat:oCitizen"
OTHER = "web-other"
# what the citizen gave, and the masked question text the knowledge base stored about it
SECRETS = (ID_NUMBER, PHONE, NAME)


def _populate(w: World) -> None:
    w.conversation(CID, days_ago(3), message_id="7001", question=QUESTION, submitted=True)
    w.handoff_episode(CID, days_ago(3))
    w.ticket(CID, days_ago(2))
    w.feedback(CID, days_ago(2), comment=f"{NAME}：服务很好")
    w.outbox(CID, days_ago(3), "submitted")
    w.seen("wx:msg:7001", days_ago(3))
    w.seen("wx:evt:oCitizen:1790000000", days_ago(3))
    w.seen("wx:msg:8000", days_ago(1))
    w.unanswered(QUESTION, days_ago(3))  # asked by this citizen ...
    w.unanswered(QUESTION, days_ago(1))  # ... and by someone else
    w.unanswered(f"我叫{NAME}，身份证{ID_NUMBER}，电话{PHONE}", days_ago(3))  # only by this citizen
    w.conversation(OTHER, days_ago(1))
    w.ticket(OTHER, days_ago(1), handled=False)


def _privacy(w: World) -> Privacy:
    return Privacy(w.engine, w.accounts.audit)


def test_export_holds_everything_unmasked(engine: Engine, db_url: str, tmp_path: Path) -> None:
    w = World.open(db_url, engine)
    _populate(w)

    doc = _privacy(w).export(CID, actor="officer", source="pytest")

    assert doc["conversation_id"] == CID and doc["format"] == "gov-assistant.privacy-export.v1"
    assert len(doc["events"]) == 15 and all({"event", "timestamp"} <= set(e) for e in doc["events"])
    assert doc["events"][2] == {**doc["events"][2], "event": "user", "text": QUESTION, "message_id": "7001"}
    [submission] = doc["form_submissions"]
    assert submission["status"] == "submitted" and submission["reference"] == "SZ2026001"
    assert submission["values"] == {"applicant_name": NAME, "id_number": ID_NUMBER, "phone": PHONE}
    [session] = doc["handoff_sessions"]
    assert session["state"] == "closed" and session["agent_id"] == "agent1"
    [ticket] = doc["handoff_tickets"]
    assert PHONE in ticket["text"] and ticket["status"] == "handled"
    [feedback] = doc["feedback"]
    assert feedback["comment"] == f"{NAME}：服务很好" and feedback["at"].startswith("2027-01-13")
    assert sorted(k["key"] for k in doc["inbound_message_keys"]) == ["wx:evt:oCitizen:1790000000", "wx:msg:7001"]
    [outbox] = doc["form_outbox"]
    assert outbox["data"]["id_number"] == ID_NUMBER and outbox["status"] == "submitted"
    shares = {q["asked_by_others"] for q in doc["unanswered_questions"]}
    assert len(doc["unanswered_questions"]) == 2 and shares == {0, 1}

    text = export_json(doc)
    assert all(s in text for s in SECRETS)  # unmasked: it is the citizen's own copy
    assert NAME in text and "\\u" not in text  # UTF-8, not ASCII escapes
    assert json.loads(text) == json.loads(json.dumps(doc, default=str))

    [entry] = w.audit("privacy.export")
    assert (entry["actor"], entry["target"], entry["source"]) == ("officer", CID, "pytest")
    assert entry["detail"]["counts"]["events"] == 15
    assert not any(s in json.dumps(entry, ensure_ascii=False) for s in (*SECRETS, QUESTION))


def test_erase_removes_every_row_of_the_conversation_only(engine: Engine, db_url: str) -> None:
    w = World.open(db_url, engine)
    _populate(w)
    other_before = w.rows_about(OTHER)

    counts = _privacy(w).erase(CID, actor="officer")

    assert counts == {"dialogue_events": 15, "handoff_sessions": 1, "handoff_tickets": 1, "citizen_feedback": 1,
                      "form_outbox": 1, "inbound_seen": 2, "kb_unanswered_questions": 2}
    assert w.rows_about(CID) == dict.fromkeys(LINKED_TABLES, 0)
    assert w.keys() == {"wx:msg:8000"}
    assert w.questions() == {QUESTION: 1}  # the other citizen's ask stays; the masked one only this citizen asked
    assert w.rows_about(OTHER) == other_before
    audit_log = Table("audit_log", MetaData(), autoload_with=w.engine)
    with w.engine.connect() as conn:
        dump = json.dumps([dict(r) for r in conn.execute(select(audit_log)).mappings()], ensure_ascii=False,
                          default=str)
    assert CID in dump and not any(s in dump for s in (*SECRETS, QUESTION))
    [entry] = w.audit("privacy.erase")
    assert entry["target"] == CID and entry["detail"]["deleted"] == counts

    with pytest.raises(PrivacyError) as err:
        _privacy(w).erase(CID, actor="officer")
    assert err.value.code == "conversation_not_found"
    assert "没有找到" in str(err.value) and "nothing is stored" in str(err.value)
    with pytest.raises(PrivacyError):
        _privacy(w).export("no-such-conversation", actor="officer")
    assert len(w.audit("privacy.erase")) == 1


# ---- the engine after an erase ------------------------------------------------------------------------------



@pytest.mark.parametrize("how", ["another process", "this process"])
def test_a_citizen_writing_after_erase_starts_afresh(project: Path, interpreter: Any, sqlite_url: str,
                                                      how: str) -> None:
    from assistant.agent import UserMessage, build_agent
    from assistant.events import event_to_dict
    from assistant.store import EventRow, SQLTrackerStore, make_engine

    store = SQLTrackerStore(sqlite_url)
    agent = build_agent(project, interpreter, store=store)
    w = World.open(sqlite_url, store.engine)
    asyncio.run(agent.handle(UserMessage("c1", "你好")))
    asyncio.run(agent.handle(UserMessage("c1", f'/inform{{"phone": "{PHONE}"}}')))
    assert asyncio.run(agent.tracker("c1")).get_slot("phone") == PHONE

    if how == "another process":  # the CLI: its own engine; this process only learns it on the next read
        Privacy(make_engine(sqlite_url), w.accounts.audit).erase("c1", actor="cli")
    else:
        Privacy(store.engine, w.accounts.audit, forget=agent.forget).erase("c1", actor="system")
    assert store.load("c1") == ()

    replies = asyncio.run(agent.handle(UserMessage("c1", "你好")))
    assert replies and any(r.text for r in replies)
    tracker = asyncio.run(agent.tracker("c1"))
    stored = store.load("c1")
    assert tracker.get_slot("phone") is None
    assert [event_to_dict(e) for e in tracker.events] == [event_to_dict(e) for e in stored]
    assert len(stored) > 0 and not any(PHONE in json.dumps(event_to_dict(e), ensure_ascii=False) for e in stored)
    with store.engine.connect() as conn:
        first = conn.scalar(select(func.min(EventRow.seq)).where(EventRow.conversation_id == "c1"))
    assert first == 1  # numbered afresh, not after the erased tail
    # and it goes on normally
    asyncio.run(agent.handle(UserMessage("c1", '/inform{"phone": "13800001111"}')))
    assert asyncio.run(agent.tracker("c1")).get_slot("phone") == "13800001111"
