"""Citizens' data for the privacy tests, written the way the running system writes it.

Events go through ``SQLTrackerStore.append`` (with the timestamps of long ago), handoff episodes and tickets
through ``HandoffStore``, WeChat message ids through ``SqlDeduplicator``, unanswered questions through the knowledge
repository's ``record_unanswered``. ``citizen_feedback`` and ``form_outbox`` belong to other parts: they are made
here with the columns those parts document, as retention and erase only reflect them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from assistant.accounts import Accounts
from assistant.events import ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered
from assistant.handoff.store import CLOSED, HandoffStore
from assistant.store import SQLTrackerStore
from connectors.dedupe import SeenMessage, SqlDeduplicator

DAY = 86_400.0
NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC).timestamp()
ID_NUMBER = "110101199003077571"
PHONE = "13912345678"
NAME = "欧阳娜娜"
QUESTION = "我想问一下宠物登记怎么办理"

_other_md = MetaData()
FEEDBACK = Table(
    "citizen_feedback", _other_md,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(255), index=True),
    Column("at", DateTime(timezone=True)),
    Column("score", Integer),
    Column("comment", Text, nullable=True),
    Column("channel", String(64)),
)
OUTBOX = Table(
    "form_outbox", _other_md,
    Column("key", String(64), primary_key=True),
    Column("conversation_id", String(255), index=True),
    Column("form", String(128)),
    Column("data", JSON),
    Column("status", String(16)),
    Column("created_at", Float),
    Column("updated_at", Float),
)
LINKED_TABLES = ("dialogue_events", "handoff_sessions", "handoff_tickets", "citizen_feedback", "form_outbox")


def days_ago(n: float) -> float:
    return NOW - n * DAY


@dataclass
class World:
    """The stores of one database, each as the system opens it."""

    url: str
    engine: Engine
    tracker: SQLTrackerStore
    handoff: HandoffStore
    dedupe: SqlDeduplicator
    accounts: Accounts

    @staticmethod
    def open(url: str, engine: Engine) -> World:
        from knowledge.db import Base, UnansweredQuestion

        Base.metadata.create_all(engine, tables=[UnansweredQuestion.__table__])  # type: ignore[list-item]
        _other_md.create_all(engine)
        return World(url, engine, SQLTrackerStore(engine), HandoffStore(engine), SqlDeduplicator(url),
                     Accounts(engine))

    # --- writing --------------------------------------------------------------------------------------------
    def conversation(self, cid: str, at: float, *, message_id: str | None = None, question: str | None = None,
                     pending: bool = False, submitted: bool = False) -> None:
        """A citizen's conversation at time ``at``: they fill the ID-card form (name, ID number, phone)."""
        ev: list[Any] = [
            SessionStarted(timestamp=at),
            ActionExecuted("action_listen", timestamp=at),
            UserUttered(question or "帮我预约换身份证", {"intent": {"name": "renew_id_card", "confidence": 0.9}},
                        "wechat" if message_id else "rest", message_id, timestamp=at),
            ActiveLoop("idcard_form", timestamp=at),
            UserUttered(f"我叫{NAME}，身份证{ID_NUMBER}，电话{PHONE}", {"intent": {"name": "inform"}}, "rest",
                        timestamp=at + 1),
            SlotSet("applicant_name", NAME, timestamp=at + 1),
            SlotSet("id_number", ID_NUMBER, timestamp=at + 1),
            SlotSet("phone", PHONE, timestamp=at + 1),
            BotUttered("请核对您的信息", timestamp=at + 2),
        ]
        if pending:
            ev += [SlotSet("submission", {"status": "pending", "form": "idcard_form", "error": "submission_timeout",
                                          "attempts": 1}, timestamp=at + 3),
                   SlotSet("form_phase", "retry", timestamp=at + 3)]
        if submitted:
            ev += [SlotSet("reference_number", "SZ2026001", timestamp=at + 3),
                   SlotSet("submission", {"status": "submitted", "form": "idcard_form", "reference": "SZ2026001"},
                           timestamp=at + 3),
                   SlotSet("applicant_name", None, timestamp=at + 3), SlotSet("id_number", None, timestamp=at + 3),
                   SlotSet("phone", None, timestamp=at + 3), ActiveLoop(None, timestamp=at + 3)]
        self.tracker.append(cid, ev)

    def handoff_episode(self, cid: str, at: float, *, close: bool = True) -> None:
        session = self.handoff.open(cid, "rest", "asked", "general", at)
        assert session is not None
        if close:
            self.handoff.claim(session.id, "agent1", at + 10)
            self.handoff.transition(session.id, ("with_agent",), CLOSED, ended_at=at + 60, outcome="resolved")

    def ticket(self, cid: str, at: float, *, handled: bool = True) -> str:
        t = self.handoff.create_ticket(cid, "rest", f"请回电 {PHONE}，{NAME}", at, "LY")
        if handled:
            self.handoff.handle_ticket(t.ref, "agent1", at + 100)
        return t.ref

    def feedback(self, cid: str, at: float, comment: str = "很满意") -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(FEEDBACK).values(conversation_id=cid, at=datetime.fromtimestamp(at, UTC), score=5,
                                                 comment=comment, channel="webchat"))

    def outbox(self, cid: str, at: float, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(OUTBOX).values(
                key=f"{status}-{cid}"[:64], conversation_id=cid, form="idcard_form", status=status, created_at=at,
                updated_at=at, data={"applicant_name": NAME, "id_number": ID_NUMBER, "phone": PHONE}))

    def seen(self, key: str, at: float) -> None:
        assert self.dedupe.claim(key)
        with self.engine.begin() as conn:
            conn.execute(update(SeenMessage.__table__).where(SeenMessage.__table__.c.key == key)
                         .values(seen_at=datetime.fromtimestamp(at, UTC)))

    def unanswered(self, text: str, at: float) -> None:
        from sqlalchemy.orm import Session

        from knowledge.repository import record_unanswered

        with Session(self.engine) as s, s.begin():
            record_unanswered(s, text, [], now=datetime.fromtimestamp(at, UTC))

    # --- reading --------------------------------------------------------------------------------------------
    def count(self, table: str, cid: str | None = None) -> int:
        md = MetaData()
        t = Table(table, md, autoload_with=self.engine)
        q = select(func.count()).select_from(t)
        if cid is not None:
            q = q.where(t.c.conversation_id == cid)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def rows_about(self, cid: str) -> dict[str, int]:
        """Rows of every conversation-linked table for ``cid``."""
        return {t: self.count(t, cid) for t in LINKED_TABLES}

    def keys(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(SeenMessage.__table__.c.key)).scalars())

    def questions(self) -> dict[str, int]:
        from knowledge.db import UnansweredQuestion

        t = UnansweredQuestion.__table__
        with self.engine.connect() as conn:
            return {r.query: r.count for r in conn.execute(select(t.c.query, t.c.count))}

    def audit(self, action: str) -> list[dict[str, Any]]:
        return self.accounts.audit_entries(action)
