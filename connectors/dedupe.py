"""Remember which inbound messages were already taken, across restarts (a table in the project's database)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from assistant.migrations import ensure_schema
from assistant.store import make_engine


class _Base(DeclarativeBase):
    pass


class SeenMessage(_Base):
    __tablename__ = "inbound_seen"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlDeduplicator:
    def __init__(self, url: str) -> None:
        # bounded connect timeout and pre-ping (an outage fails fast and heals without a restart)
        self.engine = make_engine(url)
        ensure_schema(self.engine)  # Alembic: assistant/migrations

    def claim(self, key: str) -> bool:
        """True the first time a key is claimed, False for every later delivery of the same message."""
        with Session(self.engine) as s:
            s.add(SeenMessage(key=key, seen_at=datetime.now(UTC)))
            try:
                s.commit()
            except IntegrityError:
                return False
        return True

    def release(self, key: str) -> None:
        """Forget a claim whose processing failed, so the sender's retry is taken."""
        with Session(self.engine) as s:
            s.execute(delete(SeenMessage).where(SeenMessage.key == key))
            s.commit()

    def forget_before(self, when: datetime) -> int:
        with Session(self.engine) as s:
            n = s.execute(delete(SeenMessage).where(SeenMessage.seen_at < when)).rowcount
            s.commit()
            return int(n or 0)
