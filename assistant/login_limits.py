"""Login rate limiting, kept in the database so every replica sees the same counts.

A username is locked after ``per_username`` failed logins within ``window_s`` seconds, a client address after
``per_address`` (higher: an office behind one NAT shares it). The window slides: the lock ends when the oldest of
those failures leaves it, and ``Retry-After`` says when. A successful login resets its username's count (failures
before the latest success no longer count) but not its address's — otherwise one valid account would let an
attacker reset the address counter between guesses. While locked, attempts are refused without checking the
password (no argon2 work for an attacker) and are not counted, so the lock does not grow without end.

Two replicas checking at the same instant may both let an attempt through: the limit can be exceeded by the number
of concurrent requests, which is harmless for its purpose.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Boolean, Float, Integer, String, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# rows older than this are deleted now and then: far longer than any window, so counts are never cut short
_KEEP_S = 86_400.0


class _Base(DeclarativeBase):
    pass


class LoginAttemptRow(_Base):
    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(128), index=True)
    ok: Mapped[bool] = mapped_column(Boolean)


metadata = _Base.metadata


class LoginLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_username: int = Field(5, ge=1, description="failed logins per username within the window")
    per_address: int = Field(30, ge=1, description="failed logins per client address within the window")
    window_s: float = Field(900.0, gt=0, description="the sliding window, seconds (15 minutes)")


@dataclass(frozen=True)
class Lockout:
    """Why and for how long more attempts are refused."""

    by: str  # "username" or "address"
    retry_after_s: int


def username_key(username: str) -> str:
    return username.strip().lower()[:64]


class LoginThrottle:
    def __init__(self, engine: Engine, limits: LoginLimits | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.limits = limits or LoginLimits()
        self.clock = clock

    def check(self, username: str, source: str) -> Lockout | None:
        """The lock on this attempt, if any."""
        now = self.clock()
        start = now - self.limits.window_s
        key = username_key(username)
        with Session(self.engine) as s:
            last_ok = s.scalar(select(func.max(LoginAttemptRow.at)).where(
                LoginAttemptRow.username == key, LoginAttemptRow.ok.is_(True)))
            since = max(start, last_ok) if last_ok is not None else start
            lock = self._lock(s, LoginAttemptRow.username == key, since, self.limits.per_username, now)
            if lock is not None:
                return Lockout("username", lock)
            if source:
                lock = self._lock(s, LoginAttemptRow.source == source[:128], start, self.limits.per_address, now)
                if lock is not None:
                    return Lockout("address", lock)
        return None

    def _lock(self, s: Session, who: object, since: float, limit: int, now: float) -> int | None:
        # the newest ``limit`` failures since ``since``: locked when there are that many; free again when the
        # oldest of them leaves the window
        times = s.scalars(
            select(LoginAttemptRow.at).where(who, LoginAttemptRow.ok.is_(False), LoginAttemptRow.at > since)  # type: ignore[arg-type]
            .order_by(LoginAttemptRow.at.desc()).limit(limit)
        ).all()
        if len(times) < limit:
            return None
        return max(1, math.ceil(times[-1] + self.limits.window_s - now))

    def record(self, username: str, source: str, ok: bool) -> None:
        now = self.clock()
        with Session(self.engine) as s, s.begin():
            s.add(LoginAttemptRow(at=now, username=username_key(username), source=source[:128], ok=ok))
            if ok:
                s.execute(delete(LoginAttemptRow).where(LoginAttemptRow.at < now - max(_KEEP_S, self.limits.window_s)))
