"""Retention: what citizens left longer ago than ``privacy.retention_days`` is deleted, by the CLI or daily by the server.

A conversation goes as a whole — its events (with the form values in them), handoff episodes, tickets, feedback
and form-outbox rows — once its *last* activity in any of those tables is older than the cutoff, each conversation
in its own transaction, so a crash never leaves half of one. Kept whatever their age: a conversation in an open
handoff (waiting or with staff), with an open ticket staff have not answered, or holding a form whose submission
failed and waits for a retry (in its slots or in the form outbox). Inbound message ids (WeChat dedupe) and
unanswered-question texts are shared across citizens and go by their own age.

A conversation that is still active loses its old sessions instead: a WeChat conversation id is the follower's
openid and a web chat session id lives in the browser, so a citizen who writes every few weeks keeps one
conversation for years. Its events before the latest session boundary (``session_started`` or ``restart``) at or
before the cutoff go — every one of them belongs to a session that ended by then — together with its closed
handoff episodes, handled tickets, feedback and finished form-outbox rows older than the cutoff. The session
running at the cutoff stays whole, and a conversation kept for one of the reasons above is not trimmed at all.
Slots carried into a new session are set again by events of that session, so the current session loses nothing.

Conversations go in batches, one transaction each (whole conversations or none; one per conversation when
trimming); in the server each batch is changed under its conversations' engine locks (Redis across replicas) and
their cached trackers dropped (another process notices a trimmed conversation on its next read: see
``SQLTrackerStore.load_after``); the daily run is claimed per day in ``privacy_runs`` with one conditional UPDATE,
so of several replicas exactly one runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    Column,
    Float,
    MetaData,
    String,
    Table,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from assistant.forms.state import PENDING_SLOT
from assistant.handoff.store import OPEN_STATES
from assistant.privacy import (
    DEDUPE,
    EVENTS,
    FEEDBACK,
    OUTBOX,
    SESSIONS,
    TICKETS,
    UNANSWERED,
    Auditor,
    CitizenData,
    PrivacyConfig,
    epoch,
    iso,
    privacy_config,
    remove_rows,
    time_param,
)

log = logging.getLogger(__name__)

DAY = 86_400.0
KEPT_OPEN_HANDOFF = "open_handoff"
KEPT_OPEN_TICKET = "open_ticket"
KEPT_PENDING_FORM = "pending_form"
KEPT_ACTIVE = "active_again"  # written to while the run was going
# events after which slots start again from their defaults (the submission slot is re-set if carried over)
_SLOT_RESETS = ("restart", "session_started", "reset_slots")
# events that start a new session: what precedes the latest of them belongs to sessions that had ended by then
_BOUNDARIES = ("session_started", "restart")


@dataclass
class RetentionReport:
    days: int
    cutoff: float
    dry_run: bool
    conversations: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    # conversations still active whose old sessions went, and their rows deleted per table
    trimmed_conversations: int = 0
    trimmed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def trimmed_events(self) -> int:
        return self.trimmed.get(EVENTS, 0)

    def add(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.deleted[name] = self.deleted.get(name, 0) + n

    def add_trimmed(self, counts: dict[str, int]) -> None:
        self.trimmed_conversations += 1
        for name, n in counts.items():
            self.trimmed[name] = self.trimmed.get(name, 0) + n

    def keep(self, reason: str) -> None:
        self.kept[reason] = self.kept.get(reason, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"days": self.days, "cutoff": iso(self.cutoff), "dry_run": self.dry_run,
                "conversations": self.conversations, "deleted": dict(sorted(self.deleted.items())),
                "kept": dict(sorted(self.kept.items())), "trimmed_conversations": self.trimmed_conversations,
                "trimmed_events": self.trimmed_events, "trimmed": dict(sorted(self.trimmed.items())),
                "seconds": round(self.seconds, 3)}


def _merge(into: dict[str, float], rows: Iterable[Any]) -> None:
    for conversation_id, value in rows:
        ts = epoch(value)
        if ts is not None and ts > into.get(conversation_id, float("-inf")):
            into[conversation_id] = ts


# (table, its time columns): a conversation's last activity is the latest of these
_ACTIVITY = ((EVENTS, ("timestamp",)), (SESSIONS, ("created_at", "queued_at", "claimed_at", "ended_at")),
             (TICKETS, ("created_at", "handled_at")), (FEEDBACK, ("at",)), (OUTBOX, ("created_at", "updated_at")))
# (table, column, values, reason): rows that keep their conversation whatever its age, and are never trimmed
_OPEN_ROWS = ((SESSIONS, "state", OPEN_STATES, KEPT_OPEN_HANDOFF), (TICKETS, "status", ("open",), KEPT_OPEN_TICKET),
              (OUTBOX, "status", ("pending",), KEPT_PENDING_FORM))
# (conversation id, why it was kept whole or None, rows trimmed per table)
Trimmed = tuple[str, str | None, dict[str, int]]


class Retention:
    def __init__(self, engine: Engine, config: PrivacyConfig | None = None, *,
                 audit: Auditor | None = None, clock: Callable[[], float] = time.time,
                 batch_size: int = 200) -> None:
        self.engine = engine
        self.config = config or PrivacyConfig()
        self.audit = audit
        self.clock = clock
        # conversations per transaction: each is deleted whole or not at all, and a batch keeps the statements
        # per conversation below one
        self.batch_size = batch_size

    # --- deciding -------------------------------------------------------------------------------------------
    def last_activity(self, conn: Connection, data: CitizenData,
                      conversation_ids: Sequence[str] | None = None) -> dict[str, float]:
        """The latest time anything was written about each conversation (all of them, or the ones given)."""
        out: dict[str, float] = {}
        for name, columns in _ACTIVITY:
            t = data.table(name)
            present = [t.c[c] for c in columns if t is not None and c in t.c]
            if t is None or not present:
                continue
            cid = t.c.conversation_id
            q = select(cid, *(func.max(c) for c in present)).group_by(cid)
            if conversation_ids is not None:
                q = q.where(cid.in_(list(conversation_ids)))
            for row in conn.execute(q):
                _merge(out, ((row[0], v) for v in row[1:]))
        return out

    def _open(self, conn: Connection, data: CitizenData, ids: Sequence[str]) -> dict[str, str]:
        """Why each of ``ids`` must stay although it is old: staff still have it, or a form waits for a retry."""
        out: dict[str, str] = {}
        for name, column, values, reason in _OPEN_ROWS:
            t = data.table(name)
            if t is None or not ids:
                continue
            q = select(t.c.conversation_id).where(t.c.conversation_id.in_(list(ids)), t.c[column].in_(values))
            for cid in conn.execute(q.distinct()).scalars():
                out.setdefault(cid, reason)
        return out

    def _pending_forms(self, conn: Connection, data: CitizenData, ids: Sequence[str]) -> set[str]:
        """Conversations whose latest ``submission`` slot (since the slots were last reset) says "pending": the
        form failed to submit and keeps its values for a retry."""
        t = data.table(EVENTS)
        if t is None or not ids:
            return set()
        latest: dict[str, Any] = {}
        q = (select(t.c.conversation_id, t.c.type, t.c.payload)
             .where(t.c.conversation_id.in_(list(ids)), t.c.type.in_(("slot", *_SLOT_RESETS)))
             .order_by(t.c.conversation_id, t.c.seq))
        for cid, kind, payload in conn.execute(q):
            if kind in _SLOT_RESETS:
                latest[cid] = None
            else:
                p = payload if isinstance(payload, dict) else json.loads(payload)
                if p.get("name") == PENDING_SLOT:
                    latest[cid] = p.get("value")
        return {c for c, v in latest.items() if isinstance(v, dict) and v.get("status") == "pending"}

    def expired(self, cutoff: float) -> list[str]:
        """Conversations whose last activity anywhere is older than ``cutoff`` (whether or not they are kept)."""
        data = CitizenData(self.engine)
        with self.engine.connect() as conn:
            activity = self.last_activity(conn, data)
        return sorted(c for c, ts in activity.items() if ts < cutoff)

    # --- deleting -------------------------------------------------------------------------------------------
    def delete_batch(self, conversation_ids: Sequence[str], cutoff: float, *, dry_run: bool = False,
                     data: CitizenData | None = None) -> tuple[dict[str, str], list[str], dict[str, int]]:
        """Conversations in one transaction, whole or not at all: (why each kept one stays, the ones deleted — or
        that would be —, rows per table)."""
        data = data or CitizenData(self.engine)
        ids = list(conversation_ids)
        with self.engine.begin() as conn:
            # decided again inside the transaction: a citizen may have written since the list was made
            activity = self.last_activity(conn, data, ids)
            kept = {c: KEPT_ACTIVE for c in ids if activity.get(c, float("-inf")) >= cutoff}
            kept |= self._open(conn, data, [c for c in ids if c not in kept])
            kept |= dict.fromkeys(self._pending_forms(conn, data, [c for c in ids if c not in kept]),
                                  KEPT_PENDING_FORM)
            gone = [c for c in ids if c not in kept]
            counts = data.remove_conversations(conn, gone, dry_run=dry_run) if gone else {}
        return kept, gone, counts

    def delete_conversation(self, conversation_id: str, cutoff: float, *, dry_run: bool = False,
                            data: CitizenData | None = None) -> tuple[str | None, dict[str, int]]:
        """One conversation: (why it was kept, or None; rows deleted — or that would be)."""
        kept, _, counts = self.delete_batch([conversation_id], cutoff, dry_run=dry_run, data=data)
        return kept.get(conversation_id), counts

    # --- trimming the ended sessions of conversations still active ------------------------------------------
    def trim_candidates(self, cutoff: float, data: CitizenData | None = None) -> list[str]:
        """Conversations with a session boundary at or before ``cutoff`` and rows before it (whether or not they
        are kept, or old enough to go whole). The boundaries come from the (type, timestamp, conversation_id)
        index and each conversation's first row from the (conversation_id, seq) one, so conversations without
        old sessions, and those already trimmed, are never read."""
        data = data or CitizenData(self.engine)
        t = data.table(EVENTS)
        if t is None:
            return []
        first = t.alias("first_row")
        boundary = (
            select(t.c.conversation_id, func.max(t.c.seq).label("seq"))
            .where(t.c.type.in_(_BOUNDARIES), t.c.timestamp <= time_param(t.c.timestamp, cutoff, data.dialect))
            .group_by(t.c.conversation_id)
            .subquery()
        )
        head = select(func.min(first.c.seq)).where(first.c.conversation_id == boundary.c.conversation_id)
        q = select(boundary.c.conversation_id).where(boundary.c.seq > head.scalar_subquery())
        with self.engine.connect() as conn:
            # sorted here, as the expired list is: the server takes the batch's locks in this order
            return sorted(conn.execute(q).scalars())

    def trim_conversation(self, conversation_id: str, cutoff: float, *, dry_run: bool = False,
                          data: CitizenData | None = None) -> tuple[str | None, dict[str, int]]:
        """Delete, in one transaction, the events of the conversation's sessions that ended by ``cutoff`` and its
        finished handoff, ticket, feedback and outbox rows older than it: (why it was kept whole, or None; rows
        per table — or that would be —; empty when there was nothing to trim or it is old enough to go whole)."""
        data = data or CitizenData(self.engine)
        if data.table(EVENTS) is None:
            return None, {}
        with self.engine.begin() as conn:
            # decided inside the transaction, as whole deletion is: the citizen may have written meanwhile
            if self.last_activity(conn, data, [conversation_id]).get(conversation_id, float("-inf")) < cutoff:
                return None, {}  # the whole conversation goes (or, in a dry run, would have gone) instead
            reason = self._open(conn, data, [conversation_id]).get(conversation_id)
            if reason is None and self._pending_forms(conn, data, [conversation_id]):
                reason = KEPT_PENDING_FORM
            if reason is not None:
                return reason, {}
            boundary = self._boundary(conn, data, conversation_id, cutoff)
            if boundary is None:
                return None, {}
            clauses = self._ended_before(data, conversation_id, cutoff, boundary)
            return None, {name: remove_rows(conn, data.tables[name], clause, dry_run) for name, clause in clauses.items()}

    def trim_batch(self, conversation_ids: Sequence[str], cutoff: float, *, dry_run: bool = False,
                   data: CitizenData | None = None) -> list[Trimmed]:
        """``trim_conversation`` for each, one transaction each."""
        data = data or CitizenData(self.engine)
        return [(c, *self.trim_conversation(c, cutoff, dry_run=dry_run, data=data)) for c in conversation_ids]

    @staticmethod
    def _boundary(conn: Connection, data: CitizenData, conversation_id: str, cutoff: float) -> int | None:
        """The sequence number of the latest session boundary at or before ``cutoff``, when rows precede it."""
        t = data.tables[EVENTS]
        mine = t.c.conversation_id == conversation_id
        latest = conn.scalar(select(func.max(t.c.seq)).where(
            mine, t.c.type.in_(_BOUNDARIES), t.c.timestamp <= time_param(t.c.timestamp, cutoff, data.dialect)))
        first = conn.scalar(select(func.min(t.c.seq)).where(mine))
        return int(latest) if latest is not None and first is not None and first < latest else None

    @staticmethod
    def _ended_before(data: CitizenData, conversation_id: str, cutoff: float,
                      boundary: int) -> dict[str, ColumnElement[bool]]:
        """What trimming deletes, per table: the events before ``boundary``, and the rows of the other
        conversation-linked tables that are finished (not open, not pending) with every time older than
        ``cutoff`` — the rows whole deletion would take, restricted to the past."""
        events = data.tables[EVENTS]
        out: dict[str, ColumnElement[bool]] = {
            EVENTS: and_(events.c.conversation_id == conversation_id, events.c.seq < boundary)}
        still_open = {name: (column, values) for name, column, values, _ in _OPEN_ROWS}
        for name, columns in _ACTIVITY:
            t = data.table(name)
            if name == EVENTS or t is None:
                continue
            parts: list[ColumnElement[bool]] = [t.c.conversation_id == conversation_id]
            parts += [or_(t.c[c].is_(None), t.c[c] < time_param(t.c[c], cutoff, data.dialect))
                      for c in columns if c in t.c]
            if name in still_open and still_open[name][0] in t.c:
                column, values = still_open[name]
                parts.append(t.c[column].not_in(values))
            out[name] = and_(*parts)
        return out

    def sweep(self, cutoff: float, unanswered_cutoff: float, *, dry_run: bool = False,
              data: CitizenData | None = None) -> dict[str, int]:
        """The tables shared across citizens, by their own age."""
        data = data or CitizenData(self.engine)
        out: dict[str, int] = {}
        for name, column, when in ((DEDUPE, "seen_at", cutoff), (UNANSWERED, "last_asked", unanswered_cutoff)):
            t = data.table(name)
            if t is None or column not in t.c:
                continue
            clause = t.c[column] < time_param(t.c[column], when, data.dialect)
            with self.engine.begin() as conn:
                out[name] = remove_rows(conn, t, clause, dry_run)
        return out

    def _start(self, days: int | None, dry_run: bool) -> tuple[RetentionReport, float]:
        days = days if days is not None else self.config.retention_days
        if days < 1:
            raise ValueError("days must be at least 1 / 保留天数至少为 1")
        now = self.clock()
        unanswered_days = days if days != self.config.retention_days else self.config.unanswered_days
        return RetentionReport(days, now - days * DAY, dry_run), now - unanswered_days * DAY

    def _finish(self, report: RetentionReport, started: float, actor: str, source: str) -> RetentionReport:
        report.seconds = time.monotonic() - started
        if self.audit is not None and not report.dry_run:
            detail = report.to_json()
            detail.pop("seconds")
            self.audit(actor, "retention.run", "retention", source, detail)
        return report

    def run(self, days: int | None = None, *, dry_run: bool = False, actor: str = "system",
            source: str = "") -> RetentionReport:
        started = time.monotonic()
        report, unanswered_cutoff = self._start(days, dry_run)
        data = CitizenData(self.engine)
        expired = self.expired(report.cutoff)
        for i in range(0, len(expired), self.batch_size):
            self._tally(report, *self.delete_batch(expired[i : i + self.batch_size], report.cutoff,
                                                   dry_run=dry_run, data=data))
        candidates = self.trim_candidates(report.cutoff, data)
        for i in range(0, len(candidates), self.batch_size):
            self._tally_trimmed(report, self.trim_batch(candidates[i : i + self.batch_size], report.cutoff,
                                                        dry_run=dry_run, data=data))
        report.add(self.sweep(report.cutoff, unanswered_cutoff, dry_run=dry_run, data=data))
        return self._finish(report, started, actor, source)

    async def run_async(self, *, lock: Callable[[str], contextlib.AbstractAsyncContextManager[Any]],
                        forget: Callable[[str], None] | None = None, days: int | None = None,
                        actor: str = "system", source: str = "") -> RetentionReport:
        """The same run inside a server: each batch under its conversations' locks (taken in order, so two runs
        cannot deadlock), the database work off the event loop, the deleted and trimmed conversations' cached
        trackers dropped (a running agent reloads what remains)."""
        started = time.monotonic()
        report, unanswered_cutoff = self._start(days, False)
        data = await asyncio.to_thread(CitizenData, self.engine)
        expired = await asyncio.to_thread(self.expired, report.cutoff)
        for i in range(0, len(expired), self.batch_size):
            batch = expired[i : i + self.batch_size]
            async with _holding(lock, batch):
                kept, gone, counts = await asyncio.to_thread(self.delete_batch, batch, report.cutoff, data=data)
                for conversation_id in gone if forget is not None else ():
                    forget(conversation_id)
            self._tally(report, kept, gone, counts)
        candidates = await asyncio.to_thread(self.trim_candidates, report.cutoff, data)
        for i in range(0, len(candidates), self.batch_size):
            batch = candidates[i : i + self.batch_size]
            async with _holding(lock, batch):
                trimmed = await asyncio.to_thread(self.trim_batch, batch, report.cutoff, data=data)
                for conversation_id, _, counts in trimmed if forget is not None else ():
                    if any(counts.values()):
                        forget(conversation_id)
            self._tally_trimmed(report, trimmed)
        report.add(await asyncio.to_thread(self.sweep, report.cutoff, unanswered_cutoff, data=data))
        return self._finish(report, started, actor, source)

    @staticmethod
    def _tally(report: RetentionReport, kept: dict[str, str], gone: list[str], counts: dict[str, int]) -> None:
        for reason in kept.values():
            report.keep(reason)
        report.conversations += len(gone)
        report.add(counts)

    @staticmethod
    def _tally_trimmed(report: RetentionReport, trimmed: Iterable[Trimmed]) -> None:
        for _, reason, counts in trimmed:
            if reason is not None:
                report.keep(reason)
            elif any(counts.values()):
                report.add_trimmed(counts)


@contextlib.asynccontextmanager
async def _holding(lock: Callable[[str], contextlib.AbstractAsyncContextManager[Any]],
                   conversation_ids: Sequence[str]) -> AsyncIterator[None]:
    """The locks of all of ``conversation_ids``, taken in the order given and released together."""
    async with contextlib.AsyncExitStack() as stack:
        for conversation_id in conversation_ids:
            await stack.enter_async_context(lock(conversation_id))
        yield




# ---- the daily run in the server ------------------------------------------------------------------------------

_runs_metadata = MetaData()
RUNS = Table(
    "privacy_runs",
    _runs_metadata,
    Column("job", String(32), primary_key=True),
    Column("day", String(10), nullable=False),  # the local date (YYYY-MM-DD) of the latest claimed run
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("report", JSON, nullable=True),
)
JOB = "retention"


class DailyRetention:
    """Runs ``run`` once a day at ``config.daily_at`` local time, on one replica: the first to claim the day in
    ``privacy_runs`` runs it. A server that was down at that time runs it once it is up (after ``startup_delay_s``,
    so a replica restarting in a loop does not run it at every start)."""

    def __init__(self, engine: Engine, config: PrivacyConfig, run: Callable[[], Awaitable[RetentionReport]], *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 startup_delay_s: float = 300.0) -> None:
        self.engine = engine
        self.config = config
        self.run = run
        self.clock = clock
        self.sleep = sleep
        self.startup_delay_s = startup_delay_s
        self.zone = ZoneInfo(config.timezone)
        hour, minute = map(int, config.daily_at.split(":"))
        self.at = (hour, minute)
        _runs_metadata.create_all(engine)

    # --- time -----------------------------------------------------------------------------------------------
    def _slot(self, day: datetime) -> float:
        return day.replace(hour=self.at[0], minute=self.at[1], second=0, microsecond=0).timestamp()

    def day_of(self, now: float) -> str:
        return datetime.fromtimestamp(now, self.zone).date().isoformat()

    def due(self, now: float) -> bool:
        """Today's time has come (whether or not some replica already ran today: ``claim`` decides that)."""
        return now >= self._slot(datetime.fromtimestamp(now, self.zone))

    def next_slot(self, now: float) -> float:
        local = datetime.fromtimestamp(now, self.zone)
        slot = self._slot(local)
        if slot <= now:
            slot = self._slot(datetime.combine(local.date() + timedelta(days=1), local.time(), self.zone))
        return slot

    # --- claiming -------------------------------------------------------------------------------------------
    def claim(self, now: float) -> bool:
        """True for exactly one caller per local day, across processes: one conditional UPDATE."""
        day = self.day_of(now)
        with self.engine.connect() as conn:
            exists = conn.execute(select(RUNS.c.job).where(RUNS.c.job == JOB)).first() is not None
        if not exists:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(RUNS).values(job=JOB, day=""))
            except IntegrityError:
                pass  # another replica made the row just now
        with self.engine.begin() as conn:
            won = conn.execute(
                update(RUNS).where(RUNS.c.job == JOB, RUNS.c.day < day)
                .values(day=day, started_at=now, finished_at=None, report=None)
            ).rowcount
        return won == 1

    def finished(self, report: RetentionReport) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(RUNS).where(RUNS.c.job == JOB).values(finished_at=self.clock(), report=report.to_json()))

    def last_run(self) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(RUNS).where(RUNS.c.job == JOB)).mappings().first()
        return dict(row) if row and row["day"] else None

    # --- running --------------------------------------------------------------------------------------------
    async def tick(self) -> RetentionReport | None:
        """Run if today's time has come and no replica has run today; the report, or None."""
        now = self.clock()
        if not self.due(now) or not await asyncio.to_thread(self.claim, now):
            return None
        report = await self.run()
        await asyncio.to_thread(self.finished, report)
        log.info("retention: %d conversations deleted, rows %s, kept %s; %d trimmed of their old sessions, rows %s",
                 report.conversations, report.deleted, report.kept, report.trimmed_conversations, report.trimmed)
        return report

    async def forever(self) -> None:
        await self.sleep(self.startup_delay_s)
        while True:
            try:
                await self.tick()
            except Exception:  # a failed run (database down) is retried at the next slot, never kills the loop
                log.exception("retention run failed")
            now = self.clock()
            await self.sleep(max(self.next_slot(now) - now, 1.0))


def schedule_daily(app: Any, runtime: Any, **options: Any) -> DailyRetention | None:
    """Start the daily run with the app (its lifespan) and stop it with it; None when ``privacy.daily_run`` is off.

    ``runtime`` gives the database URL, the engine (its conversation locks and tracker cache) and the accounts
    that audit the run."""
    from assistant.store import make_engine

    config = privacy_config(runtime.config)
    if not config.daily_run:
        return None
    engine = make_engine(runtime.database_url)
    agent = runtime.agent
    accounts = getattr(runtime, "accounts", None)
    retention = Retention(engine, config, audit=accounts.audit if accounts is not None else None)

    async def run() -> RetentionReport:
        return await retention.run_async(lock=agent.locks.lock, forget=agent.forget, actor="system",
                                         source="server")

    daily = DailyRetention(engine, config, run, **options)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            task = asyncio.create_task(daily.forever(), name="daily-retention")
            try:
                yield state
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
    return daily
