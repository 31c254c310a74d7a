"""What staff do to a conversation: claim, take over, reply, transfer, return to the bot, close, note, reveal.

Each operation first wins a conditional UPDATE on the queue row, then records its transition in the tracker (under
the conversation's lock, so it never interleaves with a citizen's turn), then delivers what the citizen should
see through their channel and tells every console. Delivery is a seam (``Deliver``): the assistant package never
learns a channel's wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.accounts import User
from assistant.agent import Agent, BotReply
from assistant.errors import ApiError
from assistant.events import BotUttered, CustomEvent, Event
from assistant.handoff import state as st
from assistant.handoff.actions import (
    ACTION_RESUME,
    CANCEL_BUTTON,
    HandoffDeps,
    cancel_events,
    queue_item,
    rating_buttons,
    say,
)
from assistant.handoff.store import CLOSED, RETURNED, WAITING, WITH_AGENT, HandoffSession
from assistant.handoff.triggers import asks_queue_status, is_cancel
from assistant.handoff.view import conversation_view, mask_text, reveal_item
from assistant.store import EventRow, SQLTrackerStore
from assistant.tracker import Tracker

log = logging.getLogger(__name__)
OUTCOMES = ("resolved", "unresolved", "referred", "no_response", "spam")


@dataclass(frozen=True)
class DeliveryResult:
    delivered: bool
    outside_window: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"delivered": self.delivered, "outside_window": self.outside_window, "reason": self.reason}
        if self.outside_window:
            out |= {"message_zh": "用户超过48小时未发消息，微信不允许主动发送；消息已保存，用户下次发消息时自动补发",
                    "message_en": "Outside WeChat's 48-hour window: kept, and sent when the citizen next writes"}
        elif not self.delivered:
            out |= {"message_zh": "用户当前不在线，消息已保存，用户回来时可以看到",
                    "message_en": "The citizen is offline; the message is kept in the conversation"}
        return out


class Deliver(Protocol):
    async def __call__(self, channel: str, recipient_id: str, replies: Sequence[BotReply], *,
                       ephemeral: bool = False) -> DeliveryResult: ...


async def _no_delivery(channel: str, recipient_id: str, replies: Sequence[BotReply], *,
                       ephemeral: bool = False) -> DeliveryResult:
    return DeliveryResult(False, reason="no channels")


def _conflict(zh: str, en: str, code: str = "conflict") -> ApiError:
    return ApiError(409, code, zh, en)


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "没有这个会话的人工服务记录", "No handoff for this conversation")


def agent_reply(text: str | None, user: User, **custom: Any) -> BotUttered:
    return BotUttered(text, {"custom": {"handoff": {"from": "agent", "agent": user.display_name, **custom}}},
                      {"handoff_agent": user.username})


class HandoffService:
    def __init__(self, agent: Agent, deps: HandoffDeps, deliver: Deliver | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.agent = agent
        self.deps = deps
        self.deliver: Deliver = deliver or _no_delivery
        self.clock = clock
        self._positions_task: asyncio.Task[None] | None = None
        deps.queue_listeners.append(self._positions_soon)

    @property
    def store(self) -> Any:
        return self.deps.store

    # --- plumbing -----------------------------------------------------------------------------------------
    async def record(self, conversation_id: str, events: Sequence[Event]) -> None:
        """Append events outside a citizen's turn, under the conversation's lock (the engine reads them next)."""
        async with self.agent.locks.lock(conversation_id):
            self.agent.store.append(conversation_id, list(events))

    async def _send(self, session: HandoffSession, events: Sequence[Event]) -> DeliveryResult:
        replies = [BotReply.from_event(e) for e in events if isinstance(e, BotUttered)]
        if not replies:
            return DeliveryResult(True)
        try:
            return await self.deliver(session.channel, session.conversation_id, replies)
        except Exception:  # a channel failure must not undo what staff did
            log.exception("handoff delivery failed on %s", session.channel)
            return DeliveryResult(False, reason="error")

    def _publish(self, update: dict[str, Any]) -> None:
        self.deps.bus.publish(update)

    def _open(self, conversation_id: str) -> HandoffSession:
        session = self.store.open_for(conversation_id)
        if session is None:
            raise _not_found()
        return session

    @staticmethod
    def _check_holder(session: HandoffSession, user: User) -> None:
        if session.state != WITH_AGENT:
            raise _conflict("该会话当前未被接入", "The conversation is not with an agent", "not_with_agent")
        if session.agent_id != user.username and user.role != "admin":
            raise ApiError(403, "not_holder", "该会话由其他工作人员处理", "Another agent holds this conversation")

    # --- queue --------------------------------------------------------------------------------------------
    async def queue(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        positions: dict[str, int] = {}
        for s in self.store.open_sessions():
            item = queue_item(s, await self._preview(s.conversation_id))
            if s.state == WAITING:
                positions[s.team] = positions.get(s.team, 0) + 1
                item["position"] = positions[s.team]
            item["waiting_s"] = round(now - s.queued_at, 1)
            out.append(item)
        return out

    async def _preview(self, conversation_id: str) -> str:
        tracker = await self.agent.tracker(conversation_id)
        last = tracker.latest_user_event()
        return mask_text(last.text or "")[:120] if last else ""

    def live(self, minutes: int, limit: int = 100) -> list[dict[str, Any]]:
        """Conversations active in the last ``minutes``, newest first, with their handoff state."""
        since = self.clock() - minutes * 60
        store = self.agent.store
        rows: list[tuple[str, float]] = []
        if isinstance(store, SQLTrackerStore):
            with Session(store.engine) as s:
                q = (
                    select(EventRow.conversation_id, func.max(EventRow.timestamp).label("last"))
                    .group_by(EventRow.conversation_id)
                    .having(func.max(EventRow.timestamp) >= since)
                    .order_by(func.max(EventRow.timestamp).desc())
                    .limit(limit)
                )
                rows = [(r.conversation_id, float(r.last)) for r in s.execute(q)]
        else:
            for cid in store.conversations():
                events = store.load(cid)
                if events and events[-1].timestamp >= since:
                    rows.append((cid, events[-1].timestamp))
            rows = sorted(rows, key=lambda r: -r[1])[:limit]
        open_by = {s.conversation_id: s for s in self.store.open_sessions()}
        return [{"conversation_id": cid, "last_ts": ts, "state": open_by[cid].state if cid in open_by else "bot",
                 "agent_id": open_by[cid].agent_id if cid in open_by else None} for cid, ts in rows]

    # --- staff operations ---------------------------------------------------------------------------------
    async def claim(self, conversation_id: str, user: User) -> dict[str, Any]:
        session = self._open(conversation_id)
        if session.state != WAITING:
            raise _conflict("该会话已被其他工作人员接入", "Another agent already claimed this conversation", "already_claimed")
        won = self.store.claim(session.id, user.username, self.clock())
        if won is None:
            raise _conflict("该会话已被其他工作人员接入", "Another agent already claimed this conversation", "already_claimed")
        greeting = say(self.agent.nlg, None, "utter_handoff_claimed", agent=user.display_name)
        greeting = agent_reply(greeting.text, user)
        events: list[Event] = [
            st.transition("claimed", WAITING, WITH_AGENT, session_id=won.id, agent=user.username,
                          agent_name=user.display_name),
            greeting,
        ]
        await self.record(conversation_id, events)
        delivery = await self._send(won, [greeting])
        self._publish({"type": "queue", "op": "claimed", "session": queue_item(won), "by": user.username})
        self.deps.queue_changed()
        return {"session": won.to_json(), "delivery": delivery.to_json()}

    async def takeover(self, conversation_id: str, user: User) -> dict[str, Any]:
        """Staff pick a conversation the bot is handling from the live list."""
        tracker = await self.agent.tracker(conversation_id)
        if not tracker.events:
            raise _not_found()
        channel = tracker.state.latest_input_channel or "rest"
        team = user.team or self.deps.config.default_team
        session = self.store.open(conversation_id, channel, "staff", team, self.clock(), agent_id=user.username)
        if session is None:
            raise _conflict("该会话已在人工服务中", "The conversation is already with staff", "already_open")
        greeting = agent_reply(say(self.agent.nlg, None, "utter_handoff_claimed", agent=user.display_name).text, user)
        events: list[Event] = [
            st.transition("taken_over", st.BOT, WITH_AGENT, reason="staff", session_id=session.id,
                          agent=user.username, agent_name=user.display_name),
            st.pause(),
            greeting,
        ]
        await self.record(conversation_id, events)
        delivery = await self._send(session, [greeting])
        self._publish({"type": "queue", "op": "claimed", "session": queue_item(session), "by": user.username})
        return {"session": session.to_json(), "delivery": delivery.to_json()}

    async def reply(self, conversation_id: str, user: User, text: str) -> dict[str, Any]:
        session = self._open(conversation_id)
        self._check_holder(session, user)
        message = agent_reply(text, user)
        await self.record(conversation_id, [message])
        delivery = await self._send(session, [message])
        if not delivery.delivered:
            report = CustomEvent(st.DELIVERY, {"status": "outside_window" if delivery.outside_window else "not_delivered",
                                               "ref": repr(message.timestamp), "text": text, "reason": delivery.reason,
                                               "retry": delivery.outside_window})
            await self.record(conversation_id, [report])
        self._publish({"type": "message", "conversation_id": conversation_id, "state": WITH_AGENT,
                       "agent_id": session.agent_id,
                       "item": {"kind": "agent", "text": mask_text(text), "ts": message.timestamp,
                                "agent": user.display_name},
                       "delivery": delivery.to_json()})
        return {"ts": message.timestamp, "delivery": delivery.to_json()}

    async def typing(self, conversation_id: str, user: User, on: bool = True) -> None:
        session = self._open(conversation_id)
        self._check_holder(session, user)
        signal = BotReply(None, custom={"handoff": {"typing": on, "agent": user.display_name}})
        with contextlib.suppress(Exception):
            await self.deliver(session.channel, conversation_id, [signal], ephemeral=True)

    def citizen_typing(self, conversation_id: str) -> None:
        session = self.store.open_for(conversation_id)
        if session is not None:  # typing to the bot interests nobody
            self._publish({"type": "typing", "conversation_id": conversation_id, "who": "citizen",
                           "agent_id": session.agent_id})

    async def transfer(self, conversation_id: str, user: User, *, to_agent: User | None = None,
                       to_team: str | None = None, note: str = "") -> dict[str, Any]:
        session = self._open(conversation_id)
        self._check_holder(session, user)
        if (to_agent is None) == (to_team is None):
            raise ApiError(422, "invalid_transfer", "请选择转给一位工作人员或一个组", "Choose one agent or one team")
        if to_team is not None and to_team not in self.deps.config.team_ids():
            raise ApiError(422, "unknown_team", "没有这个组", f"Unknown team {to_team!r}")
        if to_agent is not None:
            moved = self.store.transition(session.id, (WITH_AGENT,), WITH_AGENT, expected_agent=session.agent_id,
                                          agent_id=to_agent.username, claimed_at=self.clock())
            target, to_state = to_agent.display_name, WITH_AGENT
        else:
            moved = self.store.transition(session.id, (WITH_AGENT,), WAITING, expected_agent=session.agent_id,
                                          agent_id=None, team=to_team, claimed_at=None)
            target, to_state = next(t.name for t in self.deps.config.teams if t.id == to_team), WAITING
        if moved is None:
            raise _conflict("会话状态已变化，请刷新", "The conversation changed meanwhile; reload", "stale")
        told = say(self.agent.nlg, None, "utter_handoff_transferred", target=target)
        events: list[Event] = [
            st.transition("transferred", WITH_AGENT, to_state, session_id=session.id, by=user.username,
                          to_agent=to_agent.username if to_agent else None, to_team=to_team, note=note or None),
            agent_reply(told.text, user),
        ]
        if note:
            events.append(CustomEvent(st.NOTE, {"author": user.username, "text": note, "private": True}))
        await self.record(conversation_id, events)
        delivery = await self._send(moved, events)
        self._publish({"type": "queue", "op": "transferred", "session": queue_item(moved), "by": user.username,
                       "note": mask_text(note)})
        self.deps.queue_changed()
        return {"session": moved.to_json(), "delivery": delivery.to_json()}

    async def return_to_bot(self, conversation_id: str, user: User) -> dict[str, Any]:
        session = self._open(conversation_id)
        self._check_holder(session, user)
        done = self.store.transition(session.id, (WITH_AGENT,), RETURNED, expected_agent=session.agent_id,
                                     ended_at=self.clock())
        if done is None:
            raise _conflict("会话状态已变化，请刷新", "The conversation changed meanwhile; reload", "stale")
        replies = await self.agent.execute(conversation_id, ACTION_RESUME)
        delivery = DeliveryResult(True)
        if replies:
            delivery = await self.deliver(done.channel, conversation_id, replies)
        self._publish({"type": "queue", "op": "removed", "session": queue_item(done), "why": "returned",
                       "by": user.username})
        return {"session": done.to_json(), "replies": [r.text for r in replies], "delivery": delivery.to_json()}

    async def close(self, conversation_id: str, user: User, outcome: str, note: str = "") -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise ApiError(422, "invalid_outcome", "请选择结束原因", f"outcome must be one of {', '.join(OUTCOMES)}")
        session = self._open(conversation_id)
        if session.state == WAITING and user.role != "admin":
            raise ApiError(403, "forbidden", "只有管理员可以关闭排队中的会话", "Only admins close waiting conversations")
        if session.state == WITH_AGENT:
            self._check_holder(session, user)
        done = self.store.transition(session.id, (session.state,), CLOSED, expected_agent=session.agent_id,
                                     ended_at=self.clock(), outcome=outcome)
        if done is None:
            raise _conflict("会话状态已变化，请刷新", "The conversation changed meanwhile; reload", "stale")
        prompt = say(self.agent.nlg, None, "utter_handoff_rate", rating_buttons(), {"handoff": {"rate": True}})
        events: list[Event] = [
            st.transition("closed", session.state, st.BOT, session_id=done.id, by=user.username, outcome=outcome),
            st.resume(),
            prompt,
        ]
        if note:
            events.insert(1, CustomEvent(st.NOTE, {"author": user.username, "text": note, "private": True}))
        await self.record(conversation_id, events)
        delivery = await self._send(done, [prompt])
        self._publish({"type": "queue", "op": "removed", "session": queue_item(done), "why": "closed",
                       "by": user.username})
        self.deps.queue_changed()
        return {"session": done.to_json(), "delivery": delivery.to_json()}

    async def note(self, conversation_id: str, user: User, text: str) -> dict[str, Any]:
        tracker = await self.agent.tracker(conversation_id)
        if not tracker.events:
            raise _not_found()
        event = CustomEvent(st.NOTE, {"author": user.username, "text": text, "private": True})
        await self.record(conversation_id, [event])
        self._publish({"type": "note", "conversation_id": conversation_id,
                       "item": {"kind": "note", "author": user.username, "text": mask_text(text), "ts": event.timestamp}})
        return {"ts": event.timestamp}

    async def view(self, conversation_id: str) -> dict[str, Any]:
        tracker = await self.agent.tracker(conversation_id)
        if not tracker.events:
            raise _not_found()
        out = conversation_view(tracker, self.agent.domain)
        latest = self.store.latest_for(conversation_id)
        out["session"] = latest.to_json() if latest else None
        if latest is not None and latest.state == WAITING:
            out["session"]["position"] = self.store.position(latest)
        return out

    async def reveal(self, conversation_id: str, index: int | None) -> dict[str, Any]:
        tracker = await self.agent.tracker(conversation_id)
        item = reveal_item(tracker, self.agent.domain, index)
        if item is None:
            raise ApiError(404, "not_found", "没有这条记录", "No such entry")
        return item

    # --- the citizen's side while staff hold the conversation ---------------------------------------------
    async def on_paused(self, tracker: Tracker) -> list[Event]:
        """Called by the engine (inside the citizen's turn) for every message kept while paused."""
        session = self.store.open_for(tracker.conversation_id)
        last = tracker.latest_user_event()
        if session is None or last is None:
            return []
        text = last.text or ""
        if session.state == WAITING and is_cancel(text, self.deps.config):
            return cancel_events(self.deps, self.agent.nlg, tracker, self.clock())
        self._publish({"type": "message", "conversation_id": tracker.conversation_id, "state": session.state,
                       "agent_id": session.agent_id,
                       "item": {"kind": "user", "text": mask_text(text), "ts": last.timestamp}})
        # the citizen wrote: a WeChat 48-hour window is open again, so send what could not be sent before
        out = await self._redeliver(tracker, session)
        if session.state == WAITING and asks_queue_status(last.parse_data, self.deps.config):
            info = self.deps.waiting_info(session)
            out.append(say(self.agent.nlg, tracker, "utter_handoff_already_queued", (CANCEL_BUTTON,),
                           {"handoff": info}, **info))
        return out

    async def _redeliver(self, tracker: Tracker, session: HandoffSession) -> list[Event]:
        pending: dict[str, dict[str, Any]] = {}
        for e in tracker.events:
            if isinstance(e, CustomEvent) and e.name == st.DELIVERY:
                ref = str(e.data.get("ref"))
                if e.data.get("status") == "delivered":
                    pending.pop(ref, None)
                elif e.data.get("retry"):
                    pending[ref] = dict(e.data)
        out: list[Event] = []
        for ref, data in pending.items():
            result = await self.deliver(session.channel, tracker.conversation_id, [BotReply(str(data.get("text", "")))])
            if result.delivered:
                out.append(CustomEvent(st.DELIVERY, {"status": "delivered", "ref": ref, "late": True}))
                self._publish({"type": "delivery", "conversation_id": tracker.conversation_id, "ref": ref,
                               "status": "delivered"})
        return out

    # --- queue positions for waiting citizens -------------------------------------------------------------
    def _positions_soon(self) -> None:
        """Coalesce bursts of queue changes into one round of position updates."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        pending = self._positions_task
        # a round already scheduled on this loop will see this change too (one on a loop that has since
        # stopped never runs: schedule anew)
        if pending is not None and not pending.done() and pending.get_loop() is loop:
            return
        self._positions_task = loop.create_task(self._push_positions())

    async def _push_positions(self) -> None:
        """Tell waiting citizens whose place changed; one query for the whole queue, whatever its length."""
        await asyncio.sleep(0.05)  # a burst of claims becomes one round
        waiting = self.store.waiting()
        mean = self.store.mean_handle_seconds()
        told = self.deps.told
        places: dict[str, int] = {}
        for session in waiting:
            places[session.team] = position = places.get(session.team, 0) + 1
            if told.get(session.id) == position:
                continue
            told[session.id] = position
            info = {"state": WAITING, "position": position, "ahead": position - 1, "team": session.team,
                    "eta_minutes": self.deps.eta_minutes(position, mean)}
            with contextlib.suppress(Exception):
                await self.deliver(session.channel, session.conversation_id, [BotReply(None, custom={"handoff": info})],
                                   ephemeral=True)
        still = {s.id for s in waiting}
        for gone in [k for k in told if k not in still]:
            del told[gone]


PausedHook = Callable[[Tracker], Awaitable[list[Event]]]
