"""Confirmed forms the back office could not take: kept in a table and submitted in the background when it returns.

When a submission fails with a retryable error (back office down, 5xx, timeout), ``FormAction`` keeps the form
pending in the conversation (as before: the citizen can say "重试") and also puts it here. ``OutboxWorker`` looks
for due rows every ``interval_s`` and, for each, under the conversation's lock:

- checks the conversation still waits for exactly this submission (same form, same data: the idempotency key);
  a form the citizen has since cancelled, changed, or got through by retrying is dropped, never submitted;
- submits it with the same idempotency key as the first attempt, so a retry after a lost answer cannot create a
  second application;
- on success appends the same events a successful submission in a turn would (reference number, form closed, the
  success message) and pushes the message to the citizen's channel; on a retryable failure tries again later with
  exponential backoff.

Rows are claimed with a lease (a conditional UPDATE, so on PostgreSQL several replicas share the work without
doing a row twice); a replica that dies mid-row leaves the lease to expire and another takes it over. A crash
between the back office's answer and the conversation's update is safe: the next attempt gets the same reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Float, Integer, String, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from assistant.actions import ActionContext
from assistant.events import ActionExecuted, BotUttered, Event
from assistant.forms.config import OutboxConfig
from assistant.forms.state import PENDING_SLOT
from assistant.forms.submission import Receipt, Submission, SubmissionError, Submitter
from assistant.store import make_engine
from assistant.tracker import ACTION_LISTEN, Tracker

if TYPE_CHECKING:  # the worker runs the form actions; they import this module for the store
    from assistant.forms.action import FormAction

log = logging.getLogger(__name__)

PENDING = "pending"
SUBMITTED = "submitted"
STALE = "stale"  # the conversation no longer waits for it (cancelled, changed, or submitted in a turn)
REJECTED = "rejected"  # the back office said no for good (4xx): the citizen is told, nothing more is tried
# the action name the outbox's events are recorded under: the same one a rule uses to submit a form
OUTBOX_ACTION = "action_submit_form"


class _Base(DeclarativeBase):
    pass


class OutboxRow(_Base):
    __tablename__ = "form_outbox"

    # the submission's idempotency key: one row per (conversation, form, data)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(255), index=True)
    form: Mapped[str] = mapped_column(String(128))
    target: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the form's values as confirmed: the same personal data the conversation's slots hold, in the same database
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, index=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    reference: Mapped[str | None] = mapped_column(String(128), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class OutboxItem:
    key: str
    conversation_id: str
    form: str
    target: str | None
    channel: str | None
    data: Mapping[str, Any]
    attempts: int

    def submission(self) -> Submission:
        return Submission(self.conversation_id, self.form, dict(self.data), self.target)


class OutboxStore:
    def __init__(self, url: str | Engine, base_dir: Path | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = url if isinstance(url, Engine) else make_engine(url, base_dir)
        self.clock = clock
        _Base.metadata.create_all(self.engine)

    def put(self, submission: Submission, channel: str | None, first_retry_s: float) -> None:
        """Keep ``submission`` for a background retry (again pending if it was kept before)."""
        now = self.clock()
        key = submission.idempotency_key()
        values = {
            "status": PENDING, "next_attempt_at": now + first_retry_s, "lease_until": None, "updated_at": now,
            "channel": channel,
        }
        with Session(self.engine) as s:
            s.add(OutboxRow(
                key=key, conversation_id=submission.conversation_id, form=submission.form, target=submission.target,
                data=dict(submission.data), attempts=0, created_at=now, **values,
            ))
            try:
                s.commit()
                return
            except IntegrityError:
                s.rollback()
            # the same form with the same data failed again (the citizen retried by hand): one row, pending
            s.execute(update(OutboxRow).where(OutboxRow.key == key, OutboxRow.status != SUBMITTED).values(**values))
            s.commit()

    def claim(self, limit: int, lease_s: float) -> list[OutboxItem]:
        """Due rows nobody holds, each leased to the caller (a conditional UPDATE: two replicas never both win)."""
        now = self.clock()
        due = or_(OutboxRow.lease_until.is_(None), OutboxRow.lease_until < now)
        with Session(self.engine) as s:
            rows = s.execute(
                select(OutboxRow.key, OutboxRow.conversation_id, OutboxRow.form, OutboxRow.target, OutboxRow.channel,
                       OutboxRow.data, OutboxRow.attempts)
                .where(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now, due)
                .order_by(OutboxRow.next_attempt_at)
                .limit(limit)
            ).all()
            claimed: list[OutboxItem] = []
            for row in rows:
                won = s.execute(
                    update(OutboxRow)
                    .where(OutboxRow.key == row.key, OutboxRow.status == PENDING, due)
                    .values(lease_until=now + lease_s, attempts=OutboxRow.attempts + 1, updated_at=now)
                ).rowcount
                s.commit()
                if won:
                    claimed.append(OutboxItem(row.key, row.conversation_id, row.form, row.target, row.channel,
                                              dict(row.data), row.attempts + 1))
        return claimed

    def finish(self, key: str, status: str, *, reference: str | None = None, error: str | None = None) -> None:
        with Session(self.engine) as s:
            s.execute(update(OutboxRow).where(OutboxRow.key == key).values(
                status=status, reference=reference, last_error=error, lease_until=None, updated_at=self.clock(),
            ))
            s.commit()

    def retry_later(self, key: str, delay_s: float, error: str) -> None:
        now = self.clock()
        with Session(self.engine) as s:
            s.execute(update(OutboxRow).where(OutboxRow.key == key, OutboxRow.status == PENDING).values(
                next_attempt_at=now + delay_s, lease_until=None, last_error=error, updated_at=now,
            ))
            s.commit()

    def pending_count(self) -> int:
        with Session(self.engine) as s:
            return len(s.scalars(select(OutboxRow.key).where(OutboxRow.status == PENDING)).all())

    def status(self, key: str) -> tuple[str, str | None] | None:
        with Session(self.engine) as s:
            row = s.get(OutboxRow, key)
            return None if row is None else (row.status, row.reference)


# (channel, recipient, replies) -> anything: ``connectors.console.delivery.ChannelDelivery`` fits
Deliver = Callable[[str, str, Sequence[Any]], Awaitable[Any]]


class OutboxWorker:
    """Submits kept forms in the background; ``start``/``aclose`` run it with the app."""

    def __init__(
        self,
        store: OutboxStore,
        forms: Mapping[str, FormAction],
        submitter: Submitter,
        agent: Any,
        config: OutboxConfig,
        deliver: Deliver | None = None,
    ) -> None:
        self.store = store
        self.forms = dict(forms)
        self.submitter = submitter
        self.agent = agent
        self.config = config
        self.deliver = deliver
        self._task: asyncio.Task[None] | None = None
        self.submitted = 0

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="form-outbox")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval_s)
            try:
                await self.run_once()
            except Exception as err:  # the database may be down too: try again at the next round
                log.warning("form outbox round failed: %s", type(err).__name__)

    async def run_once(self) -> int:
        """Process the rows due now; how many were submitted."""
        done = 0
        # the store's calls run in a worker thread: a database that does not answer must not stall the event loop
        # (and every request on it) for the connect timeout at each round
        for item in await asyncio.to_thread(self.store.claim, self.config.batch, self.config.lease_s):
            try:
                done += await self._process(item)
            except Exception as err:
                # the lease runs out and the row is tried again; the key and type only (no form data in logs)
                log.warning("form outbox %s failed: %s", item.key[:12], type(err).__name__)
        return done

    def _backoff(self, attempts: int) -> float:
        return float(min(self.config.backoff_s * 2 ** max(attempts - 1, 0), self.config.backoff_max_s))

    async def _process(self, item: OutboxItem) -> int:
        form = self.forms.get(item.form)
        if form is None:
            await asyncio.to_thread(self.store.finish, item.key, STALE, error="unknown_form")
            return 0
        agent = self.agent
        submitted: Receipt | None = None
        async with agent.locks.lock(item.conversation_id):
            tracker = await asyncio.to_thread(self._tracker, item.conversation_id)
            if not _waits_for(tracker, form, item):
                await asyncio.to_thread(self.store.finish, item.key, STALE)
                return 0
            try:
                submitted = await self.submitter.submit(item.submission())
            except SubmissionError as err:
                if err.retryable:
                    await asyncio.to_thread(self.store.retry_later, item.key, self._backoff(item.attempts), err.code)
                    return 0
                events = self._rejected_events(form, err)
            else:
                events = self._submitted_events(tracker, form, submitted)
            # the conversation first: a crash before the row is closed makes the next round find the
            # conversation no longer waiting (stale), never a second message
            await asyncio.to_thread(agent.store.append, item.conversation_id, events)
            if submitted is not None:
                await asyncio.to_thread(self.store.finish, item.key, SUBMITTED, reference=submitted.reference)
                self.submitted += 1
            else:
                error = events[1].metadata.get("submission_error")
                await asyncio.to_thread(self.store.finish, item.key, REJECTED, error=error)
        replies = [e for e in events if isinstance(e, BotUttered)]
        if replies and self.deliver is not None and item.channel:
            from assistant.agent import BotReply

            try:
                await self.deliver(item.channel, item.conversation_id, [BotReply.from_event(e) for e in replies])
            except Exception as err:  # offline or unreachable: the citizen sees it in the history
                log.info("form outbox %s: not pushed (%s)", item.key[:12], type(err).__name__)
        return 1 if submitted is not None else 0

    def _tracker(self, conversation_id: str) -> Tracker:
        # read straight from the store (the agent's cache picks up what we append on its next load)
        events = self.agent.store.load(conversation_id)
        return Tracker(conversation_id, (), self.agent.domain.slot_defaults).with_events(events)

    def _context(self, tracker: Tracker) -> ActionContext:
        a = self.agent
        return ActionContext(tracker, a.domain, a.nlg, a.knowledge, a.clock(), a.config, None)

    def _submitted_events(self, tracker: Tracker, form: FormAction, receipt: Receipt) -> list[Event]:
        events = form.receipt_events(self._context(tracker), receipt, later=True)
        return [ActionExecuted(OUTBOX_ACTION, "outbox", 1.0), *events, ActionExecuted(ACTION_LISTEN, "outbox", 1.0)]

    def _rejected_events(self, form: FormAction, err: SubmissionError) -> list[Event]:
        text = (
            f"抱歉，您的{form.form.title}提交后被受理系统退回（{err.message_zh}）。您填写的信息仍为您保留，"
            "可回复“修改”核对后重新提交，或拨打 12345 咨询。"
            f"\nSorry, the back office did not accept your application ({err.message_en})."
        )
        said = BotUttered(text, {}, {"form": form.name, "submission_error": err.code, "outbox": REJECTED})
        return [ActionExecuted(OUTBOX_ACTION, "outbox", 1.0), said, ActionExecuted(ACTION_LISTEN, "outbox", 1.0)]


def form_key(tracker: Tracker, form: FormAction) -> str:
    return form.submission_for(tracker.conversation_id, tracker.slots).idempotency_key()


def _waits_for(tracker: Tracker, form: FormAction, item: OutboxItem) -> bool:
    """The conversation still waits for this submission: pending for this form, with the data that was kept."""
    pending = tracker.slots.get(PENDING_SLOT) or {}
    if not isinstance(pending, Mapping) or pending.get("status") != PENDING or pending.get("form") != item.form:
        return False
    return form_key(tracker, form) == item.key
