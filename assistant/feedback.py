"""Citizens' satisfaction ratings: a score from 1 to 5 and an optional comment, one row per rating.

The table ``citizen_feedback`` (id, conversation_id, at, score, comment, channel) lives in the same database as the
conversations; retention and erase delete its rows by ``conversation_id`` and by age (``at``, UTC), so those names
are part of its contract.

A conversation may rate once per stretch of conversation: a second rating is refused until the citizen has written
again after the first one. That keeps one open browser tab from filling the dashboard with fives (or ones), while
a citizen who comes back with a new matter can rate the new service. Comments are stored masked (ID and phone
numbers): the editors who read them need the opinion, not the person.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Index, Integer, String, Text, func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from assistant.errors import ApiError
from assistant.handoff.view import mask_text
from assistant.store import EventRow, make_engine
from knowledge.db import UTCDateTime

MIN_SCORE, MAX_SCORE = 1, 5
MAX_COMMENT = 500


class _Base(DeclarativeBase):
    pass


class FeedbackRow(_Base):
    __tablename__ = "citizen_feedback"
    __table_args__ = (Index("ix_citizen_feedback_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    channel: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True)
class Feedback:
    id: int
    conversation_id: str
    at: datetime
    score: int
    comment: str | None
    channel: str

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "conversation_id": self.conversation_id, "at": self.at.isoformat(),
                "score": self.score, "comment": self.comment, "channel": self.channel}


@dataclass(frozen=True)
class SatisfactionSummary:
    average: float | None
    count: int
    distribution: dict[str, int]

    def to_json(self) -> dict[str, object]:
        return {"average": self.average, "count": self.count, "distribution": dict(self.distribution)}


def check_score(score: object) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not MIN_SCORE <= score <= MAX_SCORE:
        raise ApiError(422, "feedback.invalid_score", "评分须为 1 到 5 的整数", "score must be an integer from 1 to 5")
    return score


def clean_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    # control characters carry no opinion; a comment of only spaces is no comment
    text = "".join(ch for ch in comment if ch in "\n\t" or ch >= " " and ch != "\x7f").strip()
    if len(text) > MAX_COMMENT:
        raise ApiError(422, "feedback.comment_too_long", f"评价内容最多 {MAX_COMMENT} 字",
                       f"The comment may have at most {MAX_COMMENT} characters")
    return mask_text(text) or None


class FeedbackStore:
    """Ratings in SQL. ``add`` checks the conversation exists in the tracker store's ``dialogue_events`` (a
    sender rates its own conversation only) and the once-per-stretch rule above."""

    def __init__(self, url: str | Engine, base_dir: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = url if isinstance(url, Engine) else make_engine(url, base_dir)
        self.clock = clock
        _Base.metadata.create_all(self.engine)

    def add(self, conversation_id: str, score: int, comment: str | None, channel: str) -> Feedback:
        """Store a rating of ``conversation_id`` given through ``channel``: refused (404) when the conversation
        has no citizen message on that channel, (409) when it was rated after its latest citizen message."""
        score = check_score(score)
        comment = clean_comment(comment)
        events = EventRow.__table__
        with self.engine.begin() as conn:
            last = conn.execute(
                select(events.c.timestamp, events.c.payload["input_channel"].as_string())
                .where(events.c.conversation_id == conversation_id, events.c.type == "user")
                .order_by(events.c.seq.desc())
                .limit(1)
            ).first()
            if last is None or last[1] != channel:
                raise ApiError(404, "feedback.no_conversation", "没有找到您的会话，请先咨询后再评价",
                               "No conversation to rate: ask something first")
            previous = conn.scalar(
                select(func.max(FeedbackRow.at)).where(FeedbackRow.conversation_id == conversation_id)
            )
            if previous is not None and _aware(previous).timestamp() >= float(last[0]):
                raise ApiError(409, "feedback.already_rated", "您已评价过本次服务，感谢您的反馈",
                               "You have already rated this service; thank you")
            at = datetime.fromtimestamp(self.clock(), UTC)
            new_id = conn.execute(
                insert(FeedbackRow).values(conversation_id=conversation_id, at=at, score=score,
                                           comment=comment, channel=channel).returning(FeedbackRow.id)
            ).scalar_one()
        return Feedback(int(new_id), conversation_id, at, score, comment, channel)

    def for_conversation(self, conversation_id: str) -> list[Feedback]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(FeedbackRow).where(FeedbackRow.conversation_id == conversation_id).order_by(FeedbackRow.id)
            ).all()
        return [Feedback(r.id, r.conversation_id, _aware(r.at), r.score, r.comment, r.channel) for r in rows]

    def counts(self, since: datetime, until: datetime | None = None) -> dict[int, int]:
        """How many ratings of each score were given in ``[since, until)``: one grouped query."""
        q = select(FeedbackRow.score, func.count()).where(FeedbackRow.at >= since).group_by(FeedbackRow.score)
        if until is not None:
            q = q.where(FeedbackRow.at < until)
        with self.engine.connect() as conn:
            return {int(score): int(n) for score, n in conn.execute(q)}

    def summary(self, since: datetime, until: datetime | None = None) -> SatisfactionSummary:
        return summarise(self.counts(since, until))


def summarise(counts: dict[int, int]) -> SatisfactionSummary:
    distribution = {str(s): int(counts.get(s, 0)) for s in range(MIN_SCORE, MAX_SCORE + 1)}
    total = sum(distribution.values())
    average = round(sum(int(s) * n for s, n in distribution.items()) / total, 2) if total else None
    return SatisfactionSummary(average, total, distribution)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
