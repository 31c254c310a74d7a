"""The editors' dashboard: questions per day, answer rate, handoff rate, top intents, top unanswered questions and
citizens' satisfaction, computed in SQL over the stored conversations.

Definitions (dates are days in Asia/Shanghai; the window is the last ``days`` days, today included):

- **question**: a citizen message, i.e. every ``user`` event in ``dialogue_events`` (typed text or a button
  press), on the day it was sent.
- **turn**: a question and every event of its conversation up to the next question.
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

Cost: four grouped queries over the window's events (a window function numbers the turns; JSON fields are read
with SQLAlchemy's JSON paths, which compile to ``JSON_EXTRACT`` on SQLite and ``#>>`` on PostgreSQL), using an
index on ``dialogue_events.timestamp``; no tracker is loaded in Python. ``bench/dashboard.py`` measures it. The
result is cached for ``cache_seconds`` so a room of editors refreshing the page costs one computation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, Integer, and_, case, cast, func, inspect, or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
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
TIMESTAMP_INDEX = "ix_dialogue_events_timestamp"

_events = EventRow.__table__


def _json(path: tuple[str, ...]) -> ColumnElement[Any]:
    return _events.c.payload[path].as_string()


def ensure_timestamp_index(engine: Engine) -> None:
    """The window is a range of timestamps: without this index every request reads the whole table. Plain DDL
    (not an ``Index`` on ``EventRow``'s table, which would change the tracker store's own metadata)."""
    EventRow.metadata.create_all(engine, tables=[_events])
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {TIMESTAMP_INDEX} ON dialogue_events (timestamp)"))
    except DBAPIError:
        # another replica created it at the same moment (PostgreSQL's IF NOT EXISTS is not race-free)
        if TIMESTAMP_INDEX not in {i["name"] for i in inspect(engine).get_indexes("dialogue_events")}:
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


class Analytics:
    """Computes the dashboard. ``events`` is the tracker store's engine (``dialogue_events``, and the handoff
    and feedback tables, which live in the same database); ``knowledge_sessions`` opens a session on the
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
        ensure_timestamp_index(self.engine)

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
        start = datetime(first.year, first.month, first.day, tzinfo=TIMEZONE)
        end = start + timedelta(days=days)
        offset = int(start.utcoffset().total_seconds())  # type: ignore[union-attr]
        t0, t1 = start.timestamp(), end.timestamp()
        per_day = {first + timedelta(days=i): {"questions": 0, "answered": 0, "handoffs": 0} for i in range(days)}
        with self.engine.connect() as conn:
            dialect = conn.dialect.name
            for day, questions, answered in conn.execute(self._turns_query(t0, t1, dialect, offset)):
                row = per_day.get(_date(day))
                if row is not None:
                    row["questions"], row["answered"] = int(questions), int(answered or 0)
            for day, n in conn.execute(self._handoffs_per_day(t0, t1, dialect, offset)):
                row = per_day.get(_date(day))
                if row is not None:
                    row["handoffs"] = int(n)
            conversations, handed_off = conn.execute(self._handoff_rate_query(t0, t1)).one()
            intents = conn.execute(self._intents_query(t0, t1)).all()
        questions = sum(r["questions"] for r in per_day.values())
        answered = sum(r["answered"] for r in per_day.values())
        return {
            "days": [{"date": d.isoformat(), **counts} for d, counts in sorted(per_day.items())],
            "answer_rate": round(answered / questions, 4) if questions else 0.0,
            "handoff_rate": round(int(handed_off or 0) / int(conversations), 4) if conversations else 0.0,
            "top_intents": [{"intent": str(name), "count": int(n)} for name, n in intents],
            "top_unanswered": self._unanswered(start.astimezone(UTC), end.astimezone(UTC)),
            "satisfaction": self.satisfaction(start.astimezone(UTC), end.astimezone(UTC)).to_json(),
        }

    # --- queries ----------------------------------------------------------------------------------------------
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
            .where(self._window(t0, t1), _events.c.type.in_(("user", "bot")))
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
        return select(day, func.count(), func.sum(turns.c.answered)).group_by(day)

    def _entries(self, t0: float, t1: float) -> ColumnElement[bool]:
        return and_(self._window(t0, t1), _events.c.type == "handoff",
                    _json(("transition",)).in_(HANDOFF_ENTRIES))

    def _handoffs_per_day(self, t0: float, t1: float, dialect: str, offset: int) -> Any:
        day = day_number(_events.c.timestamp, dialect, offset).label("day")
        entries = select(day, _events.c.conversation_id).where(self._entries(t0, t1)).distinct().subquery("entries")
        return select(entries.c.day, func.count()).group_by(entries.c.day)

    def _handoff_rate_query(self, t0: float, t1: float) -> Any:
        asking = (
            select(_events.c.conversation_id)
            .where(self._window(t0, t1), _events.c.type == "user")
            .distinct()
            .subquery("asking")
        )
        entered = select(_events.c.conversation_id).where(self._entries(t0, t1)).distinct().subquery("entered")
        joined = asking.outerjoin(entered, asking.c.conversation_id == entered.c.conversation_id)
        return select(func.count(), func.count(entered.c.conversation_id)).select_from(joined)

    def _intents_query(self, t0: float, t1: float) -> Any:
        intent = _json(("parse_data", "intent", "name")).label("intent")
        return (
            select(intent, func.count().label("n"))
            .where(self._window(t0, t1), _events.c.type == "user", intent.is_not(None))
            .group_by(intent)
            .order_by(func.count().desc(), intent)
            .limit(self.top)
        )

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


def _date(day: Any) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


def shanghai_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, TIMEZONE).date().isoformat()

