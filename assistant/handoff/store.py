"""The handoff queue in SQL: one row per handoff episode, tickets left outside service hours.

Every change of state is one conditional UPDATE (``... WHERE id = ? AND state = 'waiting'``): the database, not
the process, decides who wins a race, so two agents claiming at once — on one replica or on several — get
exactly one winner. At most one episode per conversation is open (a partial unique index).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Index, Integer, String, Text, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from assistant.migrations import ensure_schema
from assistant.store import make_engine

WAITING = "waiting"
WITH_AGENT = "with_agent"
CLOSED = "closed"
RETURNED = "returned"
CANCELLED = "cancelled"
OPEN_STATES = (WAITING, WITH_AGENT)
_OPEN_SQL = "state IN ('waiting', 'with_agent')"


class _Base(DeclarativeBase):
    pass


class SessionRow(_Base):
    __tablename__ = "handoff_sessions"
    __table_args__ = (
        Index(
            "uq_handoff_open_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        Index("ix_handoff_state_queue", "state", "priority", "queued_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    team: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    queued_at: Mapped[float] = mapped_column(Float)
    claimed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class TicketRow(_Base):
    __tablename__ = "handoff_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(32), unique=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    channel: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open")
    handled_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handled_at: Mapped[float | None] = mapped_column(Float, nullable=True)


@dataclass(frozen=True)
class HandoffSession:
    id: int
    conversation_id: str
    channel: str
    state: str
    reason: str
    team: str
    priority: int
    agent_id: str | None
    created_at: float
    queued_at: float
    claimed_at: float | None
    ended_at: float | None
    outcome: str | None
    rating: int | None
    version: int

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Ticket:
    id: int
    ref: str
    conversation_id: str
    channel: str
    text: str
    created_at: float
    status: str
    handled_by: str | None
    handled_at: float | None

    def to_json(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _session(row: SessionRow) -> HandoffSession:
    return HandoffSession(**{k: getattr(row, k) for k in HandoffSession.__dataclass_fields__})


def _ticket(row: TicketRow) -> Ticket:
    return Ticket(**{k: getattr(row, k) for k in Ticket.__dataclass_fields__})


class HandoffStore:
    def __init__(self, url: str | Engine, base_dir: Path | None = None) -> None:
        self.engine = url if isinstance(url, Engine) else make_engine(url, base_dir)
        ensure_schema(self.engine)  # Alembic: assistant/migrations

    # --- reading ------------------------------------------------------------------------------------------
    def get(self, session_id: int) -> HandoffSession | None:
        with Session(self.engine) as s:
            row = s.get(SessionRow, session_id)
            return _session(row) if row else None

    def open_for(self, conversation_id: str) -> HandoffSession | None:
        with Session(self.engine) as s:
            row = s.scalars(
                select(SessionRow).where(SessionRow.conversation_id == conversation_id, SessionRow.state.in_(OPEN_STATES))
            ).first()
            return _session(row) if row else None

    def latest_for(self, conversation_id: str) -> HandoffSession | None:
        with Session(self.engine) as s:
            row = s.scalars(
                select(SessionRow).where(SessionRow.conversation_id == conversation_id).order_by(SessionRow.id.desc())
            ).first()
            return _session(row) if row else None

    def open_sessions(self) -> list[HandoffSession]:
        with Session(self.engine) as s:
            rows = s.scalars(
                select(SessionRow)
                .where(SessionRow.state.in_(OPEN_STATES))
                .order_by(SessionRow.priority.desc(), SessionRow.queued_at, SessionRow.id)
            ).all()
            return [_session(r) for r in rows]

    def waiting(self, team: str | None = None) -> list[HandoffSession]:
        """The queue in serving order: higher priority first, then first come first served."""
        return [x for x in self.open_sessions() if x.state == WAITING and (team is None or x.team == team)]

    def position(self, session: HandoffSession) -> int:
        """1-based place in its team's queue (0 when not waiting)."""
        if session.state != WAITING:
            return 0
        with Session(self.engine) as s:
            ahead = s.scalar(
                select(func.count())
                .select_from(SessionRow)
                .where(
                    SessionRow.state == WAITING,
                    SessionRow.team == session.team,
                    (SessionRow.priority > session.priority)
                    | ((SessionRow.priority == session.priority) & (SessionRow.queued_at < session.queued_at))
                    | (
                        (SessionRow.priority == session.priority)
                        & (SessionRow.queued_at == session.queued_at)
                        & (SessionRow.id < session.id)
                    ),
                )
            )
        return int(ahead or 0) + 1

    def mean_handle_seconds(self, last: int = 50) -> float | None:
        """Mean time from claim to end over the latest ended episodes (None before any)."""
        with Session(self.engine) as s:
            rows = s.execute(
                select(SessionRow.claimed_at, SessionRow.ended_at)
                .where(SessionRow.claimed_at.is_not(None), SessionRow.ended_at.is_not(None))
                .order_by(SessionRow.id.desc())
                .limit(last)
            ).all()
        spans = [r.ended_at - r.claimed_at for r in rows if r.ended_at >= r.claimed_at]
        return sum(spans) / len(spans) if spans else None

    # --- changing -----------------------------------------------------------------------------------------
    def open(
        self,
        conversation_id: str,
        channel: str,
        reason: str,
        team: str,
        now: float,
        *,
        priority: int = 0,
        agent_id: str | None = None,
    ) -> HandoffSession | None:
        """A new episode, waiting (or already with ``agent_id``); None when the conversation has an open one."""
        row = SessionRow(
            conversation_id=conversation_id,
            channel=channel,
            state=WITH_AGENT if agent_id else WAITING,
            reason=reason,
            team=team,
            priority=priority,
            agent_id=agent_id,
            created_at=now,
            queued_at=now,
            claimed_at=now if agent_id else None,
            version=1,
        )
        try:
            with Session(self.engine) as s, s.begin():
                s.add(row)
                s.flush()
                return _session(row)
        except IntegrityError:
            return None

    def transition(
        self,
        session_id: int,
        from_states: Iterable[str],
        to_state: str,
        *,
        expected_agent: str | None = None,
        **values: object,
    ) -> HandoffSession | None:
        """Move the episode to ``to_state`` only if it is in one of ``from_states`` (and, when given, held by
        ``expected_agent``): one conditional UPDATE. The updated episode, or None when someone else got there
        first."""
        stmt = (
            update(SessionRow)
            .where(SessionRow.id == session_id, SessionRow.state.in_(tuple(from_states)))
            .values(state=to_state, version=SessionRow.version + 1, **values)
        )
        if expected_agent is not None:
            stmt = stmt.where(SessionRow.agent_id == expected_agent)
        with Session(self.engine) as s, s.begin():
            changed = s.execute(stmt).rowcount
        return self.get(session_id) if changed == 1 else None

    def claim(self, session_id: int, agent_id: str, now: float) -> HandoffSession | None:
        return self.transition(session_id, (WAITING,), WITH_AGENT, agent_id=agent_id, claimed_at=now)

    def rate(self, conversation_id: str, rating: int) -> HandoffSession | None:
        """Record the rating on the latest closed episode not yet rated."""
        latest = self.latest_for(conversation_id)
        if latest is None or latest.state != CLOSED or latest.rating is not None:
            return None
        with Session(self.engine) as s, s.begin():
            changed = s.execute(
                update(SessionRow)
                .where(SessionRow.id == latest.id, SessionRow.rating.is_(None))
                .values(rating=rating)
            ).rowcount
        return self.get(latest.id) if changed == 1 else None

    # --- tickets ------------------------------------------------------------------------------------------
    def create_ticket(self, conversation_id: str, channel: str, body: str, now: float, prefix: str) -> Ticket:
        day = datetime.fromtimestamp(now, ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d")
        with Session(self.engine) as s, s.begin():
            row = TicketRow(
                ref=f"tmp-{conversation_id[:20]}-{now}", conversation_id=conversation_id, channel=channel,
                text=body, created_at=now, status="open",
            )
            s.add(row)
            s.flush()
            # the row id makes the reference unique across replicas; the date makes it readable on the phone
            row.ref = f"{prefix}{day}{row.id:05d}"
            s.flush()
            return _ticket(row)

    def tickets(self, status: str | None = "open", limit: int = 200) -> list[Ticket]:
        with Session(self.engine) as s:
            q = select(TicketRow).order_by(TicketRow.id.desc()).limit(limit)
            if status:
                q = q.where(TicketRow.status == status)
            return [_ticket(r) for r in s.scalars(q).all()]

    def ticket(self, ref: str) -> Ticket | None:
        with Session(self.engine) as s:
            row = s.scalars(select(TicketRow).where(TicketRow.ref == ref)).first()
            return _ticket(row) if row else None

    def handle_ticket(self, ref: str, by: str, now: float) -> Ticket | None:
        with Session(self.engine) as s, s.begin():
            changed = s.execute(
                update(TicketRow)
                .where(TicketRow.ref == ref, TicketRow.status == "open")
                .values(status="handled", handled_by=by, handled_at=now)
            ).rowcount
        return self.ticket(ref) if changed == 1 else None
