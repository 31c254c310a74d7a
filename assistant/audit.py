"""The audit log: who did what, when and from where; append-only in the database.

Two ways in:

* explicit entries (``AuditLog.record``) where the caller knows more than the route does: logins, account
  changes, reveals of personal data, transfers;
* ``AuditTrail``, a pure-ASGI middleware that records every successful (2xx) non-GET request of a logged-in
  user: the actor from the login ``Auth.require_role`` found, the action from the route template
  (``POST /api/kb/publish`` -> ``kb.publish``), the target from the path parameters. It never reads the request
  body, which may hold personal data. A request that already wrote an explicit entry is not recorded twice.

Append-only: there is no update or delete API, and a trigger refuses UPDATE, DELETE (and TRUNCATE on PostgreSQL)
on ``audit_log``. The retention job deletes old citizen data (transcripts, form values); the audit log is not
citizen data — it holds staff actions, targets are ids, never form values — and is kept. A database role with only
INSERT and SELECT on the table is the stronger guard in production (the trigger does not stop its owner dropping
it).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, func, or_, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

APPEND_ONLY_MESSAGE = "audit_log is append-only"


class _Base(DeclarativeBase):
    pass


class AuditRow(_Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


# ---- the request being audited -----------------------------------------------------------------------------


@dataclass
class RequestAudit:
    """What one request has told the audit trail: who is logged in (set by ``Auth.require_role``) and whether
    an explicit entry was written for it."""

    actor: str | None = None
    explicit: bool = False


_current: contextvars.ContextVar[RequestAudit | None] = contextvars.ContextVar("audit_request", default=None)


def note_actor(username: str) -> None:
    """Called by the role check: this request is made by ``username``. (The holder is shared by reference, so a
    dependency running in a worker thread with a copy of the context still reaches it.)"""
    current = _current.get()
    if current is not None:
        current.actor = username


def _note_explicit() -> None:
    current = _current.get()
    if current is not None:
        current.explicit = True


# ---- storage -----------------------------------------------------------------------------------------------


def _install_append_only(conn: Connection) -> None:
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for op in ("UPDATE", "DELETE"):
            conn.execute(text(
                f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{op.lower()} BEFORE {op} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END"
            ))
    elif dialect == "postgresql":
        conn.execute(text(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$"
        ))
        conn.execute(text(
            "CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        ))
        conn.execute(text(
            "CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        ))
    else:
        log.warning("audit_log on %s: no append-only trigger for this database", dialect)


def create_schema(engine: Engine, *metadatas: Any) -> None:
    """The accounts' tables and the audit log's triggers. The migrated tables (users, sessions, audit log) come
    from ``assistant.migrations``; the rest (``metadatas``, e.g. login attempts) are created here, under the same
    PostgreSQL advisory lock, so replicas starting together do not race (concurrent CREATE OR REPLACE FUNCTION
    fails otherwise)."""
    from assistant.migrations import ensure_schema, exclusive

    with exclusive(engine):
        ensure_schema(engine)
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # ``exclusive`` is re-entrant per process, not per thread: threads of one process wait here
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gov_assistant.accounts_schema'))"))
            for metadata in metadatas:
                metadata.create_all(conn)
            _Base.metadata.create_all(conn)
            _install_append_only(conn)


@dataclass(frozen=True)
class AuditPage:
    entries: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def _entry(r: AuditRow) -> dict[str, Any]:
    return {"id": r.id, "at": r.at, "actor": r.actor, "action": r.action, "target": r.target, "source": r.source,
            "detail": r.detail}


class AuditLog:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def record(self, actor: str, action: str, target: str, source: str, detail: dict[str, Any]) -> None:
        _note_explicit()
        self._write(actor, action, target, source, detail)

    def _write(self, actor: str, action: str, target: str, source: str, detail: dict[str, Any]) -> None:
        with Session(self.engine) as s, s.begin():
            s.add(AuditRow(at=self.clock(), actor=actor[:64], action=action[:64], target=target[:255],
                           source=source[:128], detail=detail))

    def search(self, *, actor: str | None = None, action: str | None = None, since: float | None = None,
               until: float | None = None, limit: int = 50, offset: int = 0) -> AuditPage:
        """Newest first. ``action`` matches exactly or as a prefix of dotted names (``login`` finds
        ``login.success`` and ``login.failure``); ``until`` is exclusive."""
        conditions: list[Any] = []
        if actor:
            conditions.append(AuditRow.actor == actor)
        if action:
            conditions.append(or_(AuditRow.action == action, AuditRow.action.startswith(action.rstrip(".") + ".")))
        if since is not None:
            conditions.append(AuditRow.at >= since)
        if until is not None:
            conditions.append(AuditRow.at < until)
        with Session(self.engine) as s:
            total = s.scalar(select(func.count()).select_from(AuditRow).where(*conditions)) or 0
            rows = s.scalars(
                select(AuditRow).where(*conditions).order_by(AuditRow.id.desc()).limit(limit).offset(offset)
            ).all()
            return AuditPage([_entry(r) for r in rows], int(total), limit, offset)


# ---- the middleware ----------------------------------------------------------------------------------------

# route templates whose name says less than the vocabulary does
ACTIONS: dict[tuple[str, str], str] = {
    ("POST", "/api/kb/publish"): "kb.publish",
    ("POST", "/api/kb/versions/{version_id}/rollback"): "kb.rollback",
    ("POST", "/api/kb/import"): "kb.import",
    ("POST", "/api/kb/documents"): "kb.document.create",
    ("PUT", "/api/kb/documents/{doc_id}"): "kb.document.update",
    ("POST", "/api/kb/documents/{doc_id}/archive"): "kb.document.archive",
    ("POST", "/api/kb/faq"): "kb.faq.create",
    ("PUT", "/api/kb/faq/{faq_id}"): "kb.faq.update",
    ("POST", "/api/kb/faq/{faq_id}/archive"): "kb.faq.archive",
    ("POST", "/api/kb/unanswered/{question_id}/handled"): "kb.unanswered.handled",
    ("POST", "/api/kb/unanswered/handled"): "kb.unanswered.handled",
    ("POST", "/api/kb/unanswered/faq"): "kb.faq.create",
    ("POST", "/console/api/conversations/{cid}/messages"): "handoff.reply",
    ("POST", "/console/api/conversations/{cid}/notes"): "handoff.note",
    ("POST", "/console/api/conversations/{cid}/close"): "handoff.close",
    ("POST", "/console/api/conversations/{cid}/return"): "handoff.return",
    ("POST", "/console/api/tickets/{ref}/handled"): "handoff.ticket_handled",
}

# POSTs that change nothing (hit testing, previews) or come several times a second (typing): not privileged
NOT_AUDITED: frozenset[tuple[str, str]] = frozenset({
    ("POST", "/api/kb/search"),
    ("POST", "/api/kb/preview"),
    ("POST", "/console/api/conversations/{cid}/typing"),
})

_VERBS = {"PUT": "update", "PATCH": "update", "DELETE": "delete"}


def action_for(method: str, template: str) -> str:
    """``POST /api/kb/publish`` -> ``kb.publish``; an unlisted route gets its literal path segments joined by dots
    (``/api`` dropped), plus ``update``/``delete`` for PUT, PATCH and DELETE."""
    known = ACTIONS.get((method, template))
    if known:
        return known
    parts = [p for p in template.strip("/").split("/") if p and not p.startswith("{") and p != "api"]
    if method in _VERBS:
        parts.append(_VERBS[method])
    return ".".join(parts) or "request"


def _target(params: dict[str, Any]) -> str:
    if len(params) == 1:
        return str(next(iter(params.values())))
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()))


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


class AuditTrail:
    """Records successful privileged requests; see the module docstring."""

    def __init__(self, app: ASGIApp, audit_log: AuditLog) -> None:
        self.app = app
        self.audit_log = audit_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        holder = RequestAudit()
        token = _current.set(holder)

        async def audited_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # written before the client sees its success, so a client that reads the log next finds it
                await self._maybe_record(scope, holder, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        finally:
            _current.reset(token)

    async def _maybe_record(self, scope: Scope, holder: RequestAudit, status: int) -> None:
        if holder.actor is None or holder.explicit or not 200 <= status < 300:
            return
        route = scope.get("route")
        template = getattr(route, "path", None) or scope.get("path", "")
        method = scope["method"]
        if (method, template) in NOT_AUDITED:
            return
        params = dict(scope.get("path_params") or {})
        detail = {"status": status, "method": method, "path": scope.get("path", "")}
        try:
            await asyncio.to_thread(self.audit_log._write, holder.actor, action_for(method, template),
                                    _target(params), _client(scope), detail)
        except Exception as err:  # the change is done; a lost entry must be loud, not a failed response
            log.error("audit entry not written for %s %s by %s: %s", method, template, holder.actor,
                      type(err).__name__)


def to_epoch(moment: datetime | None) -> float | None:
    """A filter bound as a timestamp; a naive datetime is UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


__all__ = ["ACTIONS", "NOT_AUDITED", "AuditLog", "AuditPage", "AuditRow", "AuditTrail", "RequestAudit",
           "action_for", "create_schema", "note_actor", "to_epoch"]
