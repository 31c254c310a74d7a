"""Staff accounts: users with a role, argon2-hashed passwords, login sessions, and an append-only audit log.

A session is a random token given to the browser (an HttpOnly cookie) or to an API client (``Authorization:
Bearer``); only its SHA-256 is stored, so a copy of the database logs nobody in. Cookie-authenticated requests
that change something must also carry the session's CSRF token in ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request, WebSocket
from sqlalchemy import JSON, Boolean, Float, Integer, String, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from assistant.errors import ApiError
from assistant.store import make_engine

ROLES = ("agent", "admin")  # issue 7 adds "editor"
SESSION_COOKIE = "ga_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{2,64}$"


class AccountError(ValueError):
    """A bad account operation; the message is bilingual."""


class _Base(DeclarativeBase):
    pass


class UserRow(_Base):
    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    team: Mapped[str | None] = mapped_column(String(40), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)


class SessionRow(_Base):
    __tablename__ = "staff_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditRow(_Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    team: str | None
    active: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
                "team": self.team}


@dataclass(frozen=True)
class Login:
    """An authenticated request: who, how (cookie or bearer), and the session's CSRF token."""

    user: User
    via: str
    csrf: str
    token_hash: str


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.display_name, row.role, row.team, row.active)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, url: str | Engine, base_dir: Path | None = None, *, session_hours: float = 12.0,
                 clock: Callable[[], float] = time.time, hasher: PasswordHasher | None = None) -> None:
        self.engine = url if isinstance(url, Engine) else make_engine(url, base_dir)
        _Base.metadata.create_all(self.engine)
        self.session_seconds = session_hours * 3600
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        # verifying against a real hash for unknown users keeps login time independent of whether they exist
        self._dummy = self.hasher.hash(secrets.token_hex(8))

    # --- users --------------------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str, display_name: str | None = None,
                    team: str | None = None) -> User:
        if role not in ROLES:
            raise AccountError(f"未知角色 {role!r} / unknown role (use {', '.join(ROLES)})")
        _check_password(password)
        row = UserRow(username=username, display_name=display_name or username, role=role, team=team,
                      password_hash=self.hasher.hash(password), active=True, created_at=self.clock())
        try:
            with Session(self.engine) as s, s.begin():
                s.add(row)
                s.flush()
                user = _user(row)
        except IntegrityError:
            raise AccountError(f"用户名已存在 / username {username!r} already exists") from None
        self.audit("system", "user.create", username, "", {"role": role})
        return user

    def get(self, username: str) -> User | None:
        with Session(self.engine) as s:
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            return _user(row) if row else None

    def by_id(self, user_id: int) -> User | None:
        with Session(self.engine) as s:
            row = s.get(UserRow, user_id)
            return _user(row) if row else None

    def users(self, roles: Iterable[str] = ROLES) -> list[User]:
        with Session(self.engine) as s:
            rows = s.scalars(select(UserRow).where(UserRow.role.in_(tuple(roles))).order_by(UserRow.username)).all()
            return [_user(r) for r in rows]

    def set_active(self, username: str, active: bool, by: str = "system") -> User:
        with Session(self.engine) as s, s.begin():
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            if row is None:
                raise AccountError(f"用户不存在 / no such user {username!r}")
            row.active = active
            if not active:
                s.execute(update(SessionRow).where(SessionRow.user_id == row.id).values(revoked=True))
            user = _user(row)
        self.audit(by, "user.enable" if active else "user.disable", username, "", {})
        return user

    def reset_password(self, username: str, password: str, by: str = "system") -> None:
        _check_password(password)
        with Session(self.engine) as s, s.begin():
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            if row is None:
                raise AccountError(f"用户不存在 / no such user {username!r}")
            row.password_hash = self.hasher.hash(password)
            # a new password ends every session opened with the old one
            s.execute(update(SessionRow).where(SessionRow.user_id == row.id).values(revoked=True))
        self.audit(by, "user.reset_password", username, "", {})

    # --- sessions -----------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> User | None:
        with Session(self.engine) as s:
            row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
            stored = row.password_hash if row is not None else self._dummy
            try:
                self.hasher.verify(stored, password)
                ok = row is not None and row.active
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                ok = False
            if not ok or row is None:
                return None
            if self.hasher.check_needs_rehash(row.password_hash):
                with Session(self.engine) as w, w.begin():
                    w.execute(update(UserRow).where(UserRow.id == row.id).values(password_hash=self.hasher.hash(password)))
            return _user(row)

    def open_session(self, user: User) -> tuple[str, str, float]:
        """A new session: (token, csrf token, expiry time)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self.clock()
        expires = now + self.session_seconds
        with Session(self.engine) as s, s.begin():
            s.add(SessionRow(token_hash=_digest(token), user_id=user.id, csrf=csrf, created_at=now,
                             expires_at=expires, revoked=False))
        return token, csrf, expires

    def resolve(self, token: str) -> tuple[User, str, str] | None:
        """(user, csrf, token hash) of a live session of an active user, else None."""
        if not token or len(token) > 200:
            return None
        h = _digest(token)
        with Session(self.engine) as s:
            row = s.get(SessionRow, h)
            if row is None or row.revoked or row.expires_at <= self.clock():
                return None
            user = s.get(UserRow, row.user_id)
            if user is None or not user.active:
                return None
            return _user(user), row.csrf, h

    def close_session(self, token_hash: str) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(update(SessionRow).where(SessionRow.token_hash == token_hash).values(revoked=True))

    # --- audit --------------------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, target: str, source: str, detail: dict[str, Any]) -> None:
        with Session(self.engine) as s, s.begin():
            s.add(AuditRow(at=self.clock(), actor=actor, action=action, target=target, source=source[:128],
                           detail=detail))

    def audit_entries(self, action: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
            if action:
                q = q.where(AuditRow.action == action)
            return [
                {"at": r.at, "actor": r.actor, "action": r.action, "target": r.target, "source": r.source,
                 "detail": r.detail}
                for r in s.scalars(q).all()
            ]


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AccountError("密码至少 8 位 / the password needs at least 8 characters")


def _unauthorized() -> ApiError:
    return ApiError(401, "unauthorized", "请先登录", "Authentication required", {"WWW-Authenticate": "Bearer"})


def _token_of(headers: Any, cookies: Any) -> tuple[str, str] | None:
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), "bearer"
    cookie = cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, "cookie"
    return None


class Auth:
    """FastAPI dependencies over ``Accounts``: ``Depends(auth.require_role("agent", "admin"))``."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    def login_of(self, headers: Any, cookies: Any) -> Login | None:
        found = _token_of(headers, cookies)
        if found is None:
            return None
        resolved = self.accounts.resolve(found[0])
        if resolved is None:
            return None
        user, csrf, h = resolved
        return Login(user, found[1], csrf, h)

    def require_role(self, *roles: str) -> Callable[[Request], Login]:
        allowed = frozenset(roles or ROLES)

        def dependency(request: Request) -> Login:
            login = self.login_of(request.headers, request.cookies)
            if login is None:
                raise _unauthorized()
            if login.user.role not in allowed:
                raise ApiError(403, "forbidden", "没有权限执行此操作", "You are not allowed to do this")
            if login.via == "cookie" and request.method not in _SAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                if not hmac.compare_digest(sent.encode(), login.csrf.encode()):
                    raise ApiError(403, "csrf_failed", "页面已过期，请刷新后重试", "CSRF check failed; reload the page")
            return login

        return dependency

    def websocket_login(self, ws: WebSocket, *roles: str) -> Login | None:
        """The login of a WebSocket handshake; a cookie login must come from the same origin (no cross-site
        WebSocket hijacking)."""
        login = self.login_of(ws.headers, ws.cookies)
        if login is None or login.user.role not in frozenset(roles or ROLES):
            return None
        if login.via == "cookie":
            origin = ws.headers.get("origin")
            host = ws.headers.get("host", "")
            if origin and origin.split("://", 1)[-1] != host:
                return None
        return login


def require_role(auth: Auth, *roles: str) -> Callable[[Request], Login]:
    """``Depends(require_role(auth, "admin"))``: the same as ``auth.require_role("admin")``."""
    return auth.require_role(*roles)


def client_address(request: Request | WebSocket) -> str:
    return request.client.host if request.client else ""
