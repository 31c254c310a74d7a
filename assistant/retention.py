"""Retention: what citizens left longer ago than ``privacy.retention_days`` is deleted, by the CLI or daily by the server.

A conversation goes as a whole — its events (with the form values in them), handoff episodes, tickets, feedback
and form-outbox rows — once its *last* activity in any of those tables is older than the cutoff, each conversation
in its own transaction, so a crash never leaves half of one. Kept whatever their age: a conversation in an open
handoff (waiting or with staff), with an open ticket staff have not answered, or holding a form whose submission
failed and waits for a retry (in its slots or in the form outbox). Inbound message ids (WeChat dedupe) and
unanswered-question texts are shared across citizens and go by their own age.

In the server, each conversation is deleted under the engine's conversation lock (Redis across replicas) and its
cached tracker dropped; the daily run is claimed per day in ``privacy_runs`` with one conditional UPDATE, so of
several replicas exactly one runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

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
    pending_form,
    privacy_config,
    time_param,
)

log = logging.getLogger(__name__)

DAY = 86_400.0
KEPT_OPEN_HANDOFF = "open_handoff"
KEPT_OPEN_TICKET = "open_ticket"
KEPT_PENDING_FORM = "pending_form"
KEPT_ACTIVE = "active_again"  # written to while the run was going


@dataclass
class RetentionReport:
    days: int
    cutoff: float
    dry_run: bool
    conversations: int = 0
    deleted: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.deleted[name] = self.deleted.get(name, 0) + n

    def keep(self, reason: str) -> None:
        self.kept[reason] = self.kept.get(reason, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"days": self.days, "cutoff": iso(self.cutoff), "dry_run": self.dry_run,
                "conversations": self.conversations, "deleted": dict(sorted(self.deleted.items())),
                "kept": dict(sorted(self.kept.items())), "seconds": round(self.seconds, 3)}


def _merge(into: dict[str, float], rows: Iterable[Any]) -> None:
    for conversation_id, value in rows:
        ts = epoch(value)
        if ts is not None and ts > into.get(conversation_id, float("-inf")):
            into[conversation_id] = ts


# (table, its time columns): a conversation's last activity is the latest of these
_ACTIVITY = ((EVENTS, ("timestamp",)), (SESSIONS, ("created_at", "queued_at", "claimed_at", "ended_at")),
             (TICKETS, ("created_at", "handled_at")), (FEEDBACK, ("at",)), (OUTBOX, ("created_at", "updated_at")))


class Retention:
    def __init__(self, engine: Engine, config: PrivacyConfig | None = None, *,
                 audit: Auditor | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.config = config or PrivacyConfig()
        self.audit = audit
        self.clock = clock

    # --- deciding -------------------------------------------------------------------------------------------
    def last_activity(self, conn: Connection, data: CitizenData,
                      conversation_id: str | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, columns in _ACTIVITY:
            t = data.table(name)
            if t is None:
                continue
            cid = t.c.conversation_id
            for col in (c for c in columns if c in t.c):
                q = select(cid, func.max(t.c[col])).group_by(cid)
                if conversation_id is not None:
                    q = q.where(cid == conversation_id)
                _merge(out, conn.execute(q))
        return out

    def _open_reason(self, conn: Connection, data: CitizenData, conversation_id: str) -> str | None:
        sessions, tickets = data.table(SESSIONS), data.table(TICKETS)
        if sessions is not None and conn.execute(
            select(func.count()).select_from(sessions)
            .where(sessions.c.conversation_id == conversation_id, sessions.c.state.in_(OPEN_STATES))
        ).scalar():
            return KEPT_OPEN_HANDOFF
        if tickets is not None and conn.execute(
            select(func.count()).select_from(tickets)
            .where(tickets.c.conversation_id == conversation_id, tickets.c.status == "open")
        ).scalar():
            return KEPT_OPEN_TICKET
        outbox = data.table(OUTBOX)
        if outbox is not None and conn.execute(
            select(func.count()).select_from(outbox)
            .where(outbox.c.conversation_id == conversation_id, outbox.c.status == "pending")
        ).scalar():
            return KEPT_PENDING_FORM
        return None

    def expired(self, cutoff: float) -> list[str]:
        """Conversations whose last activity anywhere is older than ``cutoff`` (whether or not they are kept)."""
        data = CitizenData(self.engine)
        with self.engine.connect() as conn:
            activity = self.last_activity(conn, data)
        return sorted(c for c, ts in activity.items() if ts < cutoff)

    # --- deleting -------------------------------------------------------------------------------------------
    def delete_conversation(self, conversation_id: str, cutoff: float, *, dry_run: bool = False,
                            data: CitizenData | None = None) -> tuple[str | None, dict[str, int]]:
        """One conversation in one transaction: (why it was kept, or None; rows deleted — or that would be)."""
        data = data or CitizenData(self.engine)
        with self.engine.begin() as conn:
            # decided again inside the transaction: the citizen may have written since the list was made
            last = self.last_activity(conn, data, conversation_id).get(conversation_id)
            if last is not None and last >= cutoff:
                return KEPT_ACTIVE, {}
            reason = self._open_reason(conn, data, conversation_id)
            if reason is not None:
                return reason, {}
            linked = data.link(conn, conversation_id, with_shared=False)
            if pending_form(linked.payloads):
                return KEPT_PENDING_FORM, {}
            return None, data.count(conn, linked) if dry_run else data.delete(conn, linked)

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
                if dry_run:
                    n = conn.execute(select(func.count()).select_from(t).where(clause)).scalar()
                else:
                    n = conn.execute(delete(t).where(clause)).rowcount
            out[name] = int(n or 0)
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
        for conversation_id in self.expired(report.cutoff):
            self._tally(report, *self.delete_conversation(conversation_id, report.cutoff, dry_run=dry_run, data=data))
        report.add(self.sweep(report.cutoff, unanswered_cutoff, dry_run=dry_run, data=data))
        return self._finish(report, started, actor, source)

    async def run_async(self, *, lock: Callable[[str], contextlib.AbstractAsyncContextManager[Any]],
                        forget: Callable[[str], None] | None = None, days: int | None = None,
                        actor: str = "system", source: str = "") -> RetentionReport:
        """The same run inside a server: each conversation under its lock, the database work off the event loop."""
        started = time.monotonic()
        report, unanswered_cutoff = self._start(days, False)
        data = await asyncio.to_thread(CitizenData, self.engine)
        for conversation_id in await asyncio.to_thread(self.expired, report.cutoff):
            async with lock(conversation_id):
                kept, counts = await asyncio.to_thread(self.delete_conversation, conversation_id, report.cutoff,
                                                       data=data)
            if kept is None and forget is not None:
                forget(conversation_id)
            self._tally(report, kept, counts)
        report.add(await asyncio.to_thread(self.sweep, report.cutoff, unanswered_cutoff, data=data))
        return self._finish(report, started, actor, source)

    @staticmethod
    def _tally(report: RetentionReport, kept: str | None, counts: dict[str, int]) -> None:
        if kept is not None:
            report.keep(kept)
        else:
            report.conversations += 1
            report.add(counts)


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
        log.info("retention: %d conversations deleted, rows %s, kept %s", report.conversations, report.deleted,
                 report.kept)
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
