"""What the assistant keeps about one citizen's conversation, where, and how to export or erase it on request.

The tables are found by reflection, because a deployment may lack some of them (no WeChat channel, no knowledge
base) and ``citizen_feedback`` belongs to another part. Each table is tied to a conversation in one of three ways:
by its ``conversation_id`` column (events, handoff episodes, tickets, feedback, the form outbox); through the message ids in the
conversation's events (WeChat's dedupe keys); or by the text of the citizen's questions (unanswered questions,
which the knowledge base stores without a conversation id and merges across citizens, so erasing takes back this
conversation's share of a count and deletes the row only when nobody else asked it).

Staff notes and delivery reports are events of the conversation, so they go with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Column, MetaData, Table, delete, func, inspect, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from assistant.forms.state import INTERNAL_SLOTS, PENDING_SLOT
from assistant.tracker import REQUESTED_SLOT

EVENTS = "dialogue_events"
SESSIONS = "handoff_sessions"
TICKETS = "handoff_tickets"
FEEDBACK = "citizen_feedback"
OUTBOX = "form_outbox"  # confirmed forms waiting for the back office (assistant/forms/outbox.py)
DEDUPE = "inbound_seen"
UNANSWERED = "kb_unanswered_questions"
# tables with a conversation_id column, in the order they are exported and deleted
BY_CONVERSATION = (EVENTS, SESSIONS, TICKETS, FEEDBACK, OUTBOX)
KNOWN_TABLES = (*BY_CONVERSATION, DEDUPE, UNANSWERED)
EXPORT_FORMAT = "gov-assistant.privacy-export.v1"

# Auditor(actor, action, target, source, detail): ``Accounts.audit``
Auditor = Callable[[str, str, str, str, dict[str, Any]], None]


class PrivacyConfig(BaseModel):
    """``privacy:`` in config.yml: how long citizens' data is kept, and when the server deletes what is older."""

    model_config = ConfigDict(extra="forbid")

    # transcripts (with the form values in them), handoff episodes, tickets, feedback, inbound message ids
    retention_days: int = Field(180, ge=1, le=36500)
    # the unanswered-question list editors work from; defaults to retention_days
    unanswered_retention_days: int | None = Field(None, ge=1, le=36500)
    # the server deletes expired data once a day (one replica per day, whichever claims the day first)
    daily_run: bool = True
    daily_at: str = Field("03:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} / 未知时区") from None
        return value

    @property
    def unanswered_days(self) -> int:
        return self.unanswered_retention_days or self.retention_days


def privacy_config(config: Any) -> PrivacyConfig:
    return getattr(config, "privacy", None) or PrivacyConfig()


class PrivacyError(ValueError):
    """A privacy request that cannot be done; the message is bilingual."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{message_zh} / {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def not_found(conversation_id: str) -> PrivacyError:
    return PrivacyError(
        "conversation_not_found",
        f"没有找到会话 {conversation_id!r} 的任何数据",
        f"nothing is stored for conversation {conversation_id!r}",
    )


# ---- values ---------------------------------------------------------------------------------------------------


def epoch(value: Any) -> float | None:
    """A stored time as seconds since the epoch: floats as they are, datetimes (naive ones are UTC)."""
    if value is None:
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    raise TypeError(f"not a time: {type(value).__name__}")


def remove_rows(conn: Connection, table: Table, clause: ColumnElement[bool], dry_run: bool) -> int:
    """Delete the rows of ``table`` matching ``clause`` inside the caller's transaction (or, for a dry run, only
    count them); how many."""
    if dry_run:
        n = conn.execute(select(func.count()).select_from(table).where(clause)).scalar()
    else:
        n = conn.execute(delete(table).where(clause)).rowcount
    return int(n or 0)


def time_param(column: Column[Any], when: float, dialect: str) -> Any:
    """``when`` in the column's own type: seconds for numeric columns, a UTC datetime for the others (naive on
    SQLite, which stores no offset and compares the text)."""
    try:
        numeric = column.type.python_type in (int, float, Decimal)
    except NotImplementedError:
        numeric = False
    if numeric:
        return when
    moment = datetime.fromtimestamp(when, UTC)
    return moment.replace(tzinfo=None) if dialect == "sqlite" else moment


def iso(ts: Any) -> str | None:
    seconds = epoch(ts)
    return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds is not None else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _row(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in mapping.items()}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ---- what the events say --------------------------------------------------------------------------------------


def user_texts(payloads: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(p["text"]) for p in payloads if p.get("event") == "user" and p.get("text")]


def message_ids(payloads: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({str(p["message_id"]) for p in payloads if p.get("event") == "user" and p.get("message_id")})


def form_submissions(payloads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each submission the form loop recorded (``submission`` slot: pending after a failure, submitted with the
    back office's reference), with the values the citizen had given by then."""
    out: list[dict[str, Any]] = []
    values: dict[str, Any] = {}
    previous: Any = None
    skip = {*INTERNAL_SLOTS, REQUESTED_SLOT}
    for p in payloads:
        kind = p.get("event")
        if kind in ("restart", "session_started", "reset_slots"):
            values.clear()
        elif kind == "slot":
            name, value = p.get("name"), p.get("value")
            if name == PENDING_SLOT:
                if isinstance(value, dict) and value != previous and value.get("status") in ("pending", "submitted"):
                    out.append({
                        "at": iso(p.get("timestamp")),
                        "form": value.get("form"),
                        "status": value.get("status"),
                        "reference": value.get("reference"),
                        "error": value.get("error"),
                        "values": dict(values),
                    })
                    if value.get("status") == "submitted":
                        values.clear()
                previous = value
            elif name not in skip and value not in (None, "", []):
                values[str(name)] = value
    return out


def _grouping_key(text: str) -> str:
    """The key the knowledge base groups an unanswered question under (``record_unanswered``)."""
    from knowledge.repository import mask_personal_data

    return mask_personal_data(text)[1][:1000]


# ---- the tables -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linked:
    """One conversation's rows: a WHERE clause per table, and its shares of unanswered questions."""

    payloads: list[dict[str, Any]]
    where: dict[str, ColumnElement[bool]]
    # (row id, times this conversation asked it) for unanswered questions matching the citizen's messages
    unanswered: list[tuple[int, int]]


class CitizenData:
    """The tables holding citizens' data in one database, as they exist now (reflected, so re-create it to see a
    table created later)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        present = set(inspect(engine).get_table_names())
        metadata = MetaData()
        self.tables: dict[str, Table] = {
            name: Table(name, metadata, autoload_with=engine) for name in KNOWN_TABLES if name in present
        }

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def events(self, conn: Connection, conversation_id: str) -> list[dict[str, Any]]:
        t = self.table(EVENTS)
        if t is None:
            return []
        rows = conn.execute(select(t.c.payload).where(t.c.conversation_id == conversation_id).order_by(t.c.seq))
        return [p if isinstance(p, dict) else json.loads(p) for (p,) in rows]

    def link(self, conn: Connection, conversation_id: str) -> Linked:
        """Where this conversation's rows are, including its share of the tables shared across citizens (which
        retention deletes by age instead)."""
        payloads = self.events(conn, conversation_id)
        where: dict[str, ColumnElement[bool]] = {
            name: t.c.conversation_id == conversation_id
            for name in BY_CONVERSATION
            if (t := self.table(name)) is not None
        }
        dedupe = self.table(DEDUPE)
        if dedupe is not None:
            # connectors/wechat.py dedupe_key: "wx:msg:<MsgId>", or "wx:evt:<openid>:<CreateTime>" for events
            clause: ColumnElement[bool] = dedupe.c.key.in_([f"wx:msg:{m}" for m in message_ids(payloads)])
            if conversation_id.startswith("wechat:"):
                openid = conversation_id.removeprefix("wechat:")
                clause = clause | dedupe.c.key.like(f"wx:evt:{_like_escape(openid)}:%", escape="\\")
            where[DEDUPE] = clause
        unanswered = self._unanswered_shares(conn, user_texts(payloads))
        return Linked(payloads, where, unanswered)

    def _unanswered_shares(self, conn: Connection, texts: Sequence[str]) -> list[tuple[int, int]]:
        t = self.table(UNANSWERED)
        if t is None or not texts:
            return []
        asked: dict[str, int] = {}
        for text in texts:
            key = _grouping_key(text)
            if key:
                asked[key] = asked.get(key, 0) + 1
        rows = conn.execute(select(t.c.id, t.c.normalized).where(t.c.normalized.in_(list(asked)))).all()
        return [(int(r.id), asked[r.normalized]) for r in rows]

    def exists(self, conn: Connection, linked: Linked) -> bool:
        if linked.payloads:
            return True
        for name in BY_CONVERSATION:
            t = self.table(name)
            if t is not None and name in linked.where and conn.execute(
                select(func.count()).select_from(t).where(linked.where[name])
            ).scalar():
                return True
        return False

    def delete(self, conn: Connection, linked: Linked) -> dict[str, int]:
        """Delete the linked rows inside the caller's transaction; rows per table."""
        out = {
            name: int(conn.execute(delete(self.tables[name]).where(clause)).rowcount or 0)
            for name, clause in linked.where.items()
        }
        t = self.table(UNANSWERED)
        if t is not None:
            touched = 0
            for row_id, times in linked.unanswered:
                # asked by others too: only this conversation's share of the count goes
                gone = conn.execute(delete(t).where(t.c.id == row_id, t.c.count <= times)).rowcount
                if not gone:
                    conn.execute(update(t).where(t.c.id == row_id).values(count=t.c.count - times))
                touched += 1
            out[UNANSWERED] = touched
        return out

    def remove_conversations(self, conn: Connection, conversation_ids: Sequence[str], *,
                             dry_run: bool = False) -> dict[str, int]:
        """Rows of the conversation-linked tables for these conversations, deleted inside the caller's transaction
        (or only counted); rows per table."""
        out: dict[str, int] = {}
        for name in BY_CONVERSATION:
            t = self.table(name)
            if t is None:
                continue
            out[name] = remove_rows(conn, t, t.c.conversation_id.in_(list(conversation_ids)), dry_run)
        return out

    def rows(self, conn: Connection, linked: Linked) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for name, clause in linked.where.items():
            if name == EVENTS:
                continue
            t = self.tables[name]
            order = t.c.id if "id" in t.c else list(t.c)[0]
            out[name] = [_row(r) for r in conn.execute(select(t).where(clause).order_by(order)).mappings()]
        t = self.table(UNANSWERED)
        if t is not None and linked.unanswered:
            times = dict(linked.unanswered)
            rows = conn.execute(select(t).where(t.c.id.in_(list(times))).order_by(t.c.id)).mappings()
            out[UNANSWERED] = [
                {"question": r["query"], "asked_in_this_conversation": times[r["id"]],
                 "asked_by_others": max(int(r["count"]) - times[r["id"]], 0),
                 "first_asked": _jsonable(r["first_asked"]), "last_asked": _jsonable(r["last_asked"])}
                for r in rows
            ]
        return out


# ---- requests -------------------------------------------------------------------------------------------------


class Privacy:
    """A citizen's requests: a copy of everything stored about their conversation, or its erasure. Both are
    audited with the conversation id and counts, never the content."""

    def __init__(self, engine: Engine, audit: Auditor, *, clock: Callable[[], float] = time.time,
                 forget: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.audit = audit
        self.clock = clock
        # a server process erasing drops its cached tracker at once (other processes notice on the next read)
        self.forget = forget

    def export(self, conversation_id: str, *, actor: str, source: str = "") -> dict[str, Any]:
        """The whole record, unmasked: it goes to the citizen it is about."""
        data = CitizenData(self.engine)
        with self.engine.connect() as conn:
            linked = data.link(conn, conversation_id)
            if not data.exists(conn, linked):
                raise not_found(conversation_id)
            rows = data.rows(conn, linked)
        doc: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "conversation_id": conversation_id,
            "exported_at": iso(self.clock()),
            "events": linked.payloads,
            "form_submissions": form_submissions(linked.payloads),
            "handoff_sessions": rows.get(SESSIONS, []),
            "handoff_tickets": rows.get(TICKETS, []),
            "feedback": rows.get(FEEDBACK, []),
            "form_outbox": rows.get(OUTBOX, []),
            "inbound_message_keys": rows.get(DEDUPE, []),
            "unanswered_questions": rows.get(UNANSWERED, []),
            "notes": {
                "zh": "本文件包含系统保存的与该会话有关的全部数据。已提交的申请由受理部门按受理编号另行保存。",
                "en": "Everything this system stores about the conversation. Submitted applications are kept by "
                      "the receiving department under their reference numbers.",
            },
        }
        counts = {"events": len(linked.payloads)} | {k: len(v) for k, v in rows.items()}
        self.audit(actor, "privacy.export", conversation_id, source, {"counts": counts})
        return doc

    def erase(self, conversation_id: str, *, actor: str, source: str = "") -> dict[str, int]:
        """Delete everything about the conversation in one transaction; rows per table."""
        data = CitizenData(self.engine)
        with self.engine.begin() as conn:
            linked = data.link(conn, conversation_id)
            if not data.exists(conn, linked):
                raise not_found(conversation_id)
            counts = data.delete(conn, linked)
        if self.forget is not None:
            self.forget(conversation_id)
        self.audit(actor, "privacy.erase", conversation_id, source, {"deleted": counts})
        return counts


def export_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, default=_jsonable)
