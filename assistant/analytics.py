"""The editors' dashboard: questions per day, answer rate, handoff rate, top intents, top unanswered questions and
citizens' satisfaction, computed in SQL over the stored conversations.

Definitions (dates are days in Asia/Shanghai; the window is the last ``days`` days, today included):

- **question**: a citizen message, i.e. every ``user`` event in ``dialogue_events`` (typed text or a button
  press), on the day it was sent.
- **turn**: a question and every event of its conversation up to the next question (events up to ``GRACE_S``
  after the window's end count: an answer arriving just after midnight answers a question of the day before).
- **answered**: the turn holds at least one ``bot`` event that is a useful answer. A bot event is *not* a useful
  answer when it is
  - a knowledge abstention (``metadata.abstained`` present: "I don't know" with near misses),
  - a knowledge answer without citations (``utter_action`` ``action_knowledge_answer`` and no ``data.citations``:
    the knowledge base was unavailable),
  - a step of the fallback ladder or a refusal: ``utter_action`` in ``NON_ANSWERS`` (``utter_default`` after an
    NLU fallback, ``utter_ask_rephrase``, ``utter_offer_human``, ``utter_out_of_scope``,
    ``utter_knowledge_abstain``).
  Everything else is an answer: a knowledge answer with citations, a form's question or confirmation, any other
  domain response or custom action's message, a handoff message (queue position, out-of-hours ticket) and a
  staff member's reply. A question with no bot event at all before the next one is not answered.
- **answer_rate**: answered questions / questions in the window (0.0 without questions).
- **handoffs** (per day): conversations that entered handoff that day (a ``handoff`` event with transition
  ``queued`` — the citizen asked or was sent to staff — or ``taken_over`` — staff picked it from the live list).
- **handoff_rate**: conversations with a question in the window that entered handoff in the window / conversations
  with a question in the window.
- **top_intents**: the intents of the window's questions, most frequent first (questions without an intent are
  left out).
- **top_unanswered**: the knowledge base's unanswered questions (``kb_unanswered_questions``, grouped by
  normalised text there) last asked in the window and not yet handled, by their count; ID and phone numbers
  masked.
- **satisfaction**: ratings in ``citizen_feedback`` given in the window, plus ratings given inside the dialogue
  after a handoff (``handoff_sessions.rating``, e.g. a WeChat citizen answering "5分") for conversations that have
  no row in ``citizen_feedback`` (the widget's rating also marks the handoff episode: counted once).

Cost. Past days do not change, so each completed day is computed once from the events (one grouped query over
that day: a window function numbers the turns; JSON fields are read with SQLAlchemy's JSON paths, which compile to
``JSON_EXTRACT`` on SQLite and ``#>>`` on PostgreSQL) and kept as counts in ``analytics_daily`` (questions,
answered, handoffs) and ``analytics_daily_intents`` (questions per intent) — counts only, no conversation ids, so
the rollup holds no personal data and the history of the dashboard outlives transcripts deleted by retention.
A request then reads those rows, computes today (and yesterday during its first ``GRACE_S`` seconds) from the
events, and counts the window's conversations for the handoff rate through an index on
``dialogue_events (type, timestamp, conversation_id)``; no tracker is loaded in Python. Several replicas may
snapshot the same day at once: the day's primary key keeps one. ``bench/dashboard.py`` measures it. The result is
also cached for ``cache_seconds`` so a room of editors refreshing the page costs one computation.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from assistant.feedback import FeedbackRow, FeedbackStore, SatisfactionSummary, summarise
from assistant.handoff.store import SessionRow
from assistant.handoff.view import mask_text
from assistant.store import EventRow

TIMEZONE = ZoneInfo("Asia/Shanghai")
MAX_DAYS = 366
NON_ANSWERS: frozenset[str] = frozenset(
    {"utter_default", "utter_ask_rephrase", "utter_offer_human", "utter_out_of_scope", "utter_knowledge_abstain"}
)
KNOWLEDGE_ACTION = "action_knowledge_answer"
HANDOFF_ENTRIES = ("queued", "taken_over")
EVENTS_INDEX = "ix_dialogue_events_type_timestamp"
# answers this long after midnight still count for the day's questions; a day is final this long after it ended
GRACE_S = 600

_events = EventRow.__table__


class _Base(DeclarativeBase):
    pass


class DailyRow(_Base):
    """One completed day's counts (the day as ``YYYY-MM-DD`` in Asia/Shanghai)."""

    __tablename__ = "analytics_daily"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    questions: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    handoffs: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[float] = mapped_column(Float)


class DailyIntentRow(_Base):
    __tablename__ = "analytics_daily_intents"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    intent: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


@dataclass
class DayFigures:
    questions: int = 0
    answered: int = 0
    handoffs: int = 0
    intents: Counter[str] = field(default_factory=Counter)


def _json(path: tuple[str, ...]) -> ColumnElement[Any]:
    return _events.c.payload[path].as_string()


def ensure_events_index(engine: Engine) -> None:
    """Today's events and the window's conversations are ranges of (type, timestamp): without this index every
    request reads the whole table. Plain DDL (an ``Index`` on ``EventRow``'s table would change the tracker
    store's own metadata). On a large existing PostgreSQL table build it beforehand without blocking writers
    (``CREATE INDEX CONCURRENTLY ix_dialogue_events_type_timestamp ON dialogue_events (type, timestamp,
    conversation_id)``): this statement then finds it and does nothing."""
    EventRow.metadata.create_all(engine, tables=[_events])
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {EVENTS_INDEX} "
                              "ON dialogue_events (type, timestamp, conversation_id)"))
    except DBAPIError:
        # another replica created it at the same moment (PostgreSQL's IF NOT EXISTS is not race-free)
        if EVENTS_INDEX not in {i["name"] for i in inspect(engine).get_indexes("dialogue_events")}:
            raise


def useful_answer() -> ColumnElement[bool]:
    """SQL truth of "this bot event is a useful answer" (see the module docstring)."""
    action = func.coalesce(_json(("metadata", "utter_action")), "")
    return and_(
        _json(("metadata", "abstained")).is_(None),
        action.not_in(sorted(NON_ANSWERS)),
        or_(action != KNOWLEDGE_ACTION, _json(("data", "citations")).is_not(None)),
    )


def day_number(ts: ColumnElement[Any], dialect: str, offset_s: int) -> ColumnElement[int]:
    """Days since 1970-01-01 in the local time ``offset_s`` east of UTC. SQLite's CAST truncates (a floor for
    the positive values here); PostgreSQL's rounds, hence FLOOR there."""
    shifted = (cast(ts, Float) + offset_s) / 86400.0
    if dialect == "postgresql":
        return cast(func.floor(shifted), Integer)
    return cast(shifted, Integer)


def _start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=TIMEZONE).timestamp()


def _offset(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=TIMEZONE).utcoffset().total_seconds())  # type: ignore[union-attr]


def _date(day: Any) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class Analytics:
    """Computes the dashboard. ``events`` is the tracker store's engine (``dialogue_events``, and the handoff,
    feedback and rollup tables, which live in the same database); ``knowledge_sessions`` opens a session on the
    knowledge database for the unanswered questions (None: no knowledge base, an empty list)."""

    def __init__(
        self,
        events: Engine,
        feedback: FeedbackStore,
        knowledge_sessions: Callable[[], Session] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 30.0,
        top: int = 10,
    ) -> None:
        self.engine = events
        self.feedback = feedback
        self.knowledge_sessions = knowledge_sessions
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.top = top
        self._cache: dict[int, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        ensure_events_index(self.engine)
        _Base.metadata.create_all(self.engine)

    # --- the dashboard --------------------------------------------------------------------------------------
    def dashboard(self, days: int = 14) -> dict[str, Any]:
        days = max(1, min(int(days), MAX_DAYS))
        now = self.clock()
        with self._lock:
            cached = self._cache.get(days)
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
        result = self.compute(days, now)
        with self._lock:
            self._cache[days] = (now, result)
        return result

    def compute(self, days: int, now: float) -> dict[str, Any]:
        today = datetime.fromtimestamp(now, TIMEZONE).date()
        first = today - timedelta(days=days - 1)
        t0, t1 = _start(first), _start(today + timedelta(days=1))
        # a day is final once its late answers are in; the days after it are computed from the events
        final = today - timedelta(days=1 if now >= _start(today) + GRACE_S else 2)
        figures: dict[date, DayFigures] = {}
        if final >= first:
            figures |= self.completed_days(first, final, now)
        live_from = max(first, final + timedelta(days=1))
        with self.engine.connect() as conn:
            figures |= self._from_events(conn, live_from, today)
            conversations, handed_off = conn.execute(self._handoff_rate_query(t0, t1)).one()
        per_day = [(d, figures.get(d) or DayFigures()) for d in _days(first, today)]
        questions = sum(f.questions for _, f in per_day)
        answered = sum(f.answered for _, f in per_day)
        intents: Counter[str] = Counter()
        for _, f in per_day:
            intents.update(f.intents)
        since, until = datetime.fromtimestamp(t0, UTC), datetime.fromtimestamp(t1, UTC)
        return {
            "days": [{"date": d.isoformat(), "questions": f.questions, "answered": f.answered, "handoffs": f.handoffs}
                     for d, f in per_day],
            "answer_rate": round(answered / questions, 4) if questions else 0.0,
            "handoff_rate": round(int(handed_off or 0) / int(conversations), 4) if conversations else 0.0,
            "top_intents": [{"intent": name, "count": n}
                            for name, n in sorted(intents.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top]],
            "top_unanswered": self._unanswered(since, until),
            "satisfaction": self.satisfaction(since, until).to_json(),
        }

    # --- completed days: computed once, then read -------------------------------------------------------------
    def completed_days(self, first: date, last: date, now: float) -> dict[date, DayFigures]:
        wanted = {d.isoformat(): d for d in _days(first, last)}
        with self.engine.connect() as conn:
            out = self._read_days(conn, list(wanted))
        missing = [d for key, d in wanted.items() if key not in {x.isoformat() for x in out}]
        if missing:
            out |= self._snapshot(min(missing), max(missing), now)
        return out

    def _read_days(self, conn: Connection, keys: list[str]) -> dict[date, DayFigures]:
        out: dict[date, DayFigures] = {}
        for chunk in (keys[i:i + 500] for i in range(0, len(keys), 500)):
            for r in conn.execute(select(DailyRow).where(DailyRow.day.in_(chunk))):
                out[date.fromisoformat(r.day)] = DayFigures(r.questions, r.answered, r.handoffs)
            for r in conn.execute(select(DailyIntentRow).where(DailyIntentRow.day.in_(chunk))):
                out[date.fromisoformat(r.day)].intents[r.intent] = r.count
        return out

    def _snapshot(self, first: date, last: date, now: float) -> dict[date, DayFigures]:
        """Compute ``first``..``last`` from the events and keep them (days already kept are left as they are)."""
        with self.engine.connect() as conn:
            computed = self._from_events(conn, first, last)
        for day in _days(first, last):
            f = computed.setdefault(day, DayFigures())
            key = day.isoformat()
            try:
                with self.engine.begin() as conn:
                    if conn.scalar(select(DailyRow.day).where(DailyRow.day == key)) is not None:
                        continue
                    conn.execute(insert(DailyRow).values(day=key, questions=f.questions, answered=f.answered,
                                                         handoffs=f.handoffs, computed_at=now))
                    if f.intents:
                        conn.execute(insert(DailyIntentRow),
                                     [{"day": key, "intent": i, "count": n} for i, n in f.intents.items()])
            except IntegrityError:
                continue  # another replica kept the same day meanwhile: the same counts
        return computed

    def forget_days(self, days: Iterable[date] | None = None) -> None:
        """Drop kept days (all of them by default) so they are computed again from the events: after events of
        a past day were imported or corrected."""
        with self.engine.begin() as conn:
            for table in (DailyIntentRow, DailyRow):
                stmt = delete(table)
                if days is not None:
                    stmt = stmt.where(table.day.in_([d.isoformat() for d in days]))
                conn.execute(stmt)
        with self._lock:
            self._cache.clear()

    # --- figures from the events -------------------------------------------------------------------------------
    def _from_events(self, conn: Connection, first: date, last: date) -> dict[date, DayFigures]:
        if last < first:
            return {}
        t0, t1 = _start(first), _start(last + timedelta(days=1))
        dialect, offset = conn.dialect.name, _offset(first)
        out: dict[date, DayFigures] = {}
        for day, questions, answered in conn.execute(self._turns_query(t0, t1, dialect, offset)):
            f = out.setdefault(_date(day), DayFigures())
            f.questions, f.answered = int(questions), int(answered or 0)
        for day, n in conn.execute(self._handoffs_per_day(t0, t1, dialect, offset)):
            out.setdefault(_date(day), DayFigures()).handoffs = int(n)
        for day, intent, n in conn.execute(self._intents_query(t0, t1, dialect, offset)):
            out.setdefault(_date(day), DayFigures()).intents[str(intent)] = int(n)
        return out

    def _window(self, t0: float, t1: float) -> ColumnElement[bool]:
        return and_(_events.c.timestamp >= t0, _events.c.timestamp < t1)

    def _turns_query(self, t0: float, t1: float, dialect: str, offset: int) -> Any:
        is_user = _events.c.type == "user"
        # each user/bot event carries the sequence number of the question it follows: its turn
        ev = (
            select(
                _events.c.conversation_id,
                _events.c.type,
                _events.c.timestamp,
                case((and_(_events.c.type == "bot", useful_answer()), 1), else_=0).label("useful"),
                func.max(case((is_user, _events.c.seq), else_=None))
                .over(partition_by=_events.c.conversation_id, order_by=_events.c.seq, rows=(None, 0))
                .label("turn"),
            )
            .where(self._window(t0, t1 + GRACE_S), _events.c.type.in_(("user", "bot")))
            .subquery("ev")
        )
        turns = (
            select(
                func.max(case((ev.c.type == "user", ev.c.timestamp), else_=None)).label("asked"),
                func.max(ev.c.useful).label("answered"),
            )
            .where(ev.c.turn.is_not(None))
            .group_by(ev.c.conversation_id, ev.c.turn)
            .subquery("turns")
        )
        day = day_number(turns.c.asked, dialect, offset).label("day")
        return select(day, func.count(), func.sum(turns.c.answered)).where(turns.c.asked < t1).group_by(day)

    def _entries(self, t0: float, t1: float) -> ColumnElement[bool]:
        return and_(_events.c.type == "handoff", self._window(t0, t1),
                    _json(("transition",)).in_(HANDOFF_ENTRIES))

    def _handoffs_per_day(self, t0: float, t1: float, dialect: str, offset: int) -> Any:
        day = day_number(_events.c.timestamp, dialect, offset).label("day")
        entries = select(day, _events.c.conversation_id).where(self._entries(t0, t1)).distinct().subquery("entries")
        return select(entries.c.day, func.count()).group_by(entries.c.day)

    def _intents_query(self, t0: float, t1: float, dialect: str, offset: int) -> Any:
        day = day_number(_events.c.timestamp, dialect, offset).label("day")
        intent = _json(("parse_data", "intent", "name")).label("intent")
        return (
            select(day, intent, func.count())
            .where(_events.c.type == "user", self._window(t0, t1), intent.is_not(None))
            .group_by(day, intent)
        )

    def _handoff_rate_query(self, t0: float, t1: float) -> Any:
        # the window's questions (read from the index alone) and handoff entries, grouped by conversation in one
        # pass: no join, so no plan that looks the many questions up once per entry
        asked = select(_events.c.conversation_id, literal(1).label("asked"), literal(0).label("entered")).where(
            _events.c.type == "user", self._window(t0, t1))
        entered = select(_events.c.conversation_id, literal(0), literal(1)).where(self._entries(t0, t1))
        both = union_all(asked, entered).subquery("both")
        per_conversation = (
            select(func.max(both.c.asked).label("asked"), func.max(both.c.entered).label("entered"))
            .group_by(both.c.conversation_id)
            .subquery("per_conversation")
        )
        return select(func.count(), func.sum(per_conversation.c.entered)).where(per_conversation.c.asked == 1)

    # --- other tables -----------------------------------------------------------------------------------------
    def _unanswered(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        if self.knowledge_sessions is None:
            return []
        from knowledge.db import UnansweredQuestion

        with self.knowledge_sessions() as s:
            rows = s.execute(
                select(UnansweredQuestion.query, UnansweredQuestion.count)
                .where(UnansweredQuestion.handled.is_(False), UnansweredQuestion.last_asked >= since,
                       UnansweredQuestion.last_asked < until)
                .order_by(UnansweredQuestion.count.desc(), UnansweredQuestion.last_asked.desc())
                .limit(self.top)
            ).all()
        return [{"question": mask_text(q), "count": int(n)} for q, n in rows]

    def satisfaction(self, since: datetime, until: datetime) -> SatisfactionSummary:
        counts = self.feedback.counts(since, until)
        if inspect(self.engine).has_table(SessionRow.__tablename__):
            rated_here = select(FeedbackRow.conversation_id)
            q = (
                select(SessionRow.rating, func.count())
                .where(SessionRow.rating.between(1, 5), SessionRow.ended_at >= since.timestamp(),
                       SessionRow.ended_at < until.timestamp(), SessionRow.conversation_id.not_in(rated_here))
                .group_by(SessionRow.rating)
            )
            with self.engine.connect() as conn:
                for score, n in conn.execute(q):
                    counts[int(score)] = counts.get(int(score), 0) + int(n)
        return summarise(counts)


def shanghai_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, TIMEZONE).date().isoformat()
