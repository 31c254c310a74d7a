"""Staff accounts: users with a role, argon2-hashed passwords, login sessions, and an append-only audit log.

A session is a random token given to the browser (an HttpOnly cookie) or to an API client (``Authorization:
Bearer``); only its SHA-256 is stored, so a copy of the database logs nobody in. Cookie-authenticated requests
that change something must also carry the session's CSRF token in ``X-CSRF-Token``.

Roles: ``agent`` works in the console; ``editor`` keeps the knowledge base (editor page, knowledge API,
dashboard); ``admin`` may do everything, including managing accounts and reading the audit log. Logins are rate
limited per username and per client address (``assistant.login_limits``); the audit log is ``assistant.audit``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request, Response, WebSocket
from sqlalchemy import Boolean, Float, Integer, String, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from assistant.audit import AuditLog, AuditRow, create_schema, note_actor
from assistant.errors import ApiError
from assistant.login_limits import LoginLimits, LoginThrottle
from assistant.login_limits import metadata as login_limits_metadata
from assistant.store import make_engine

ROLES = ("agent", "editor", "admin")
# who may use what (the role-matrix test in tests/accounts walks every route against these)
CONSOLE_ROLES = ("agent", "admin")
EDITOR_ROLES = ("editor", "admin")
ADMIN_ROLES = ("admin",)
SESSION_COOKIE = "ga_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]{2,64}$"

__all__ = ["ADMIN_ROLES", "CONSOLE_ROLES", "EDITOR_ROLES", "ROLES", "AccountError", "Accounts", "AuditRow", "Auth",
           "Login", "LoginGrant", "User"]


class AccountError(ValueError):
    """A bad account operation: a stable code and a Chinese and an English message (``str()`` shows both)."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{message_zh} / {message_en}")
        self.code, self.message_zh, self.message_en = code, message_zh, message_en


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


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str
    team: str | None
    active: bool
    created_at: float = 0.0

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


@dataclass(frozen=True)
class LoginGrant:
    """A login that succeeded: the new session's token (cookie or bearer), CSRF token and expiry."""

    user: User
    token: str
    csrf: str
    expires_at: float


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.display_name, row.role, row.team, row.active, row.created_at)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, url: str | Engine, base_dir: Path | None = None, *, session_hours: float = 12.0,
                 clock: Callable[[], float] = time.time, hasher: PasswordHasher | None = None,
                 login_limits: LoginLimits | None = None) -> None:
        self.engine = url if isinstance(url, Engine) else make_engine(url, base_dir)
        create_schema(self.engine, _Base.metadata, login_limits_metadata)
        self.session_seconds = session_hours * 3600
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.audit_log = AuditLog(self.engine, clock)
        self.throttle = LoginThrottle(self.engine, login_limits, clock)
        # verifying against a real hash for unknown users keeps login time independent of whether they exist
        self._dummy = self.hasher.hash(secrets.token_hex(8))

    # --- users --------------------------------------------------------------------------------------------
    def create_user(self, username: str, password: str, role: str, display_name: str | None = None,
                    team: str | None = None, *, by: str = "system", source: str = "") -> User:
        if not re.fullmatch(USERNAME_PATTERN, username):
            raise AccountError("bad_username", "用户名只能包含字母、数字和 _.-，2–64 位",
                               "a username is 2-64 letters, digits or _.-")
        _check_role(role)
        _check_password(password)
        row = UserRow(username=username, display_name=(display_name or username)[:64], role=role, team=team,
                      password_hash=self.hasher.hash(password), active=True, created_at=self.clock())
        try:
            with Session(self.engine) as s, s.begin():
                s.add(row)
                s.flush()
                user = _user(row)
        except IntegrityError:
            raise AccountError("username_taken", f"用户名已存在：{username}",
                               f"username {username!r} already exists") from None
        self.audit(by, "user.create", username, source, {"role": role, "team": team})
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

    def set_active(self, username: str, active: bool, by: str = "system", source: str = "", *,
                   allow_no_admin: bool = False) -> User:
        """``allow_no_admin``: the command line may disable the last admin (it can create another); the web
        admin may not, or nobody could manage accounts there any more."""
        with Session(self.engine) as s, s.begin():
            row = _existing(s, username)
            if not active and not allow_no_admin:
                _keep_an_admin(s, row)
            row.active = active
            if not active:
                s.execute(update(SessionRow).where(SessionRow.user_id == row.id).values(revoked=True))
            user = _user(row)
        self.audit(by, "user.enable" if active else "user.disable", username, source, {})
        return user

    def set_role(self, username: str, role: str, by: str = "system", source: str = "", *,
                 allow_no_admin: bool = False) -> User:
        """A new role, effective at the user's next request (sessions stay: the role is read per request)."""
        _check_role(role)
        with Session(self.engine) as s, s.begin():
            row = _existing(s, username)
            before = row.role
            if role != "admin" and not allow_no_admin:
                _keep_an_admin(s, row)
            row.role = role
            user = _user(row)
        self.audit(by, "user.role", username, source, {"from": before, "to": role})
        return user

    def reset_password(self, username: str, password: str, by: str = "system", source: str = "") -> None:
        _check_password(password)
        with Session(self.engine) as s, s.begin():
            row = _existing(s, username)
            row.password_hash = self.hasher.hash(password)
            # a new password ends every session opened with the old one
            s.execute(update(SessionRow).where(SessionRow.user_id == row.id).values(revoked=True))
        self.audit(by, "user.reset_password", username, source, {})

    # --- sessions -----------------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, source: str = "") -> User | None:
        """The active user with this password, else None. Rate limited (``assistant.login_limits``) whoever calls
        it: while the username or address is locked the password is not even checked, and each outcome counts.
        ``Auth.login`` adds the 429 answer, audit entries and the session."""
        if self.throttle.check(username, source) is not None:
            return None
        user = self._check_password(username, password)
        self.throttle.record(username, source, ok=user is not None)
        return user

    def _check_password(self, username: str, password: str) -> User | None:
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
        self.audit_log.record(actor, action, target, source, detail)

    def audit_entries(self, action: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest entries, optionally of one action (exact name or a dotted prefix such as ``login``)."""
        return self.audit_log.search(action=action, limit=limit).entries


def _existing(s: Session, username: str) -> UserRow:
    row = s.scalars(select(UserRow).where(UserRow.username == username)).first()
    if row is None:
        raise AccountError("no_such_user", f"用户不存在：{username}", f"no such user {username!r}")
    return row


def _keep_an_admin(s: Session, row: UserRow) -> None:
    """Refuse the change that would leave no active admin (nobody could manage accounts any more)."""
    if row.role != "admin" or not row.active:
        return
    others = s.scalar(select(func.count()).select_from(UserRow).where(
        UserRow.role == "admin", UserRow.active.is_(True), UserRow.id != row.id)) or 0
    if others == 0:
        raise AccountError("last_admin", "这是最后一个启用的管理员账号，不能停用或降级",
                           "this is the last active admin; it cannot be disabled or demoted")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError("unknown_role", f"未知角色：{role}（可用：{'、'.join(ROLES)}）",
                           f"unknown role {role!r} (use {', '.join(ROLES)})")


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AccountError("weak_password", "密码至少 8 位", "the password needs at least 8 characters")
    if len(password) > 256:
        raise AccountError("long_password", "密码最多 256 位", "the password has at most 256 characters")


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
            # for the audit trail (assistant.audit.AuditTrail) and for handlers that want it
            request.state.login = login
            note_actor(login.user.username)
            return login

        return dependency

    def login(self, username: str, password: str, source: str, *, roles: Iterable[str] = ROLES,
              where: str = "") -> LoginGrant:
        """Check a password under the rate limits and open a session; every outcome is audited (never the
        password). Raises 429 while the username or address is locked, 401 for wrong credentials or a role
        that may not use ``where``. Blocking (argon2): call it from a worker thread."""
        throttle = self.accounts.throttle
        lock = throttle.check(username, source)
        if lock is not None:
            self.accounts.audit(username[:64], "login.failure", where, source, {"reason": "locked", "by": lock.by})
            minutes = max(1, -(-lock.retry_after_s // 60))
            raise ApiError(429, "login_locked", f"登录失败次数过多，请 {minutes} 分钟后再试",
                           f"Too many failed logins; try again in {minutes} minute(s)",
                           {"Retry-After": str(lock.retry_after_s)})
        user = self.accounts.authenticate(username, password, source)
        if user is None or user.role not in frozenset(roles):
            # a right password for a role that may not log in here is not a guess: it counted as a success
            reason = "credentials" if user is None else "role"
            self.accounts.audit(username[:64], "login.failure", where, source, {"reason": reason})
            raise ApiError(401, "bad_credentials", "用户名或密码错误", "Wrong username or password")
        token, csrf, expires = self.accounts.open_session(user)
        self.accounts.audit(user.username, "login.success", where, source, {"role": user.role})
        return LoginGrant(user, token, csrf, expires)

    def logout(self, login: Login, source: str, where: str = "") -> None:
        self.accounts.close_session(login.token_hash)
        self.accounts.audit(login.user.username, "logout", where, source, {})

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


def set_session_cookie(response: Response, grant: LoginGrant, *, secure: bool, now: float) -> None:
    """One cookie for every staff page (console, editor, admin): path ``/``, HttpOnly, SameSite=Strict."""
    response.set_cookie(SESSION_COOKIE, grant.token, max_age=max(0, int(grant.expires_at - now)), httponly=True,
                        secure=secure, samesite="strict", path="/")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    # sessions opened before the cookie moved to "/" were scoped to the console
    response.delete_cookie(SESSION_COOKIE, path="/console")
