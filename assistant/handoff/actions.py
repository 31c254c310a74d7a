"""The handoff actions the engine runs inside a citizen's turn, and the texts they say.

Each action reads the conversation, changes the queue through one conditional SQL statement when it must, and
returns events — the transition, ``pause``/``resume`` for the engine, and what to tell the citizen. A project may
override any text with a domain response of the same name (``utter_handoff_queued`` gets ``{position}`` and
``{eta_minutes}``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assistant.actions import Action, ActionContext
from assistant.domain import Button
from assistant.events import BotUttered, Event
from assistant.handoff import state as st
from assistant.handoff.bus import Bus
from assistant.handoff.config import HandoffConfig
from assistant.handoff.hours import ServiceHours
from assistant.handoff.store import CANCELLED, WAITING, HandoffSession, HandoffStore
from assistant.handoff.triggers import (
    CANCEL_PAYLOAD,
    LEAVE_MESSAGE_PAYLOAD,
    Trigger,
    detect,
    parse_rating,
    rate_payload,
)
from assistant.nlg import NLG
from assistant.tracker import Tracker

ACTION_HANDOFF = "action_handoff"
ACTION_CANCEL = "action_handoff_cancel"
ACTION_LEAVE_MESSAGE = "action_handoff_leave_message"
ACTION_TICKET = "action_handoff_ticket"
ACTION_RATE = "action_handoff_rate"
ACTION_RESUME = "action_handoff_resume"
# the name the demo domain (and Rasa projects) use for the same action
ALIASES = {"action_human_handoff": ACTION_HANDOFF}

TEXTS = {
    "utter_handoff_queued": "正在为您转接人工客服，您前面还有 {ahead} 位，预计等待约 {eta_minutes} 分钟。排队期间您可以继续输入，"
    "工作人员接入后会看到。(Connecting you to a staff member: {ahead} ahead of you, about {eta_minutes} min.)",
    "utter_handoff_already_queued": "您已在排队中，当前第 {position} 位，预计等待约 {eta_minutes} 分钟。"
    "(You are number {position} in the queue.)",
    "utter_handoff_with_agent": "工作人员正在为您服务，请直接输入您的问题。(A staff member is with you.)",
    "utter_handoff_closed_hours": "现在是非工作时间（人工服务时间：{hours}），下次人工服务开始于 {next_open}。"
    "您可以留言，我们会在上班后尽快回复。(Staff are off duty now; you can leave a message.)",
    "utter_handoff_ask_message": "请直接输入您的留言内容，可附上联系电话，方便工作人员回复您。(Please type your message.)",
    "utter_handoff_ticket": "您的留言已收到，留言编号 {ref}，工作人员上班后会尽快处理。(Message received, reference {ref}.)",
    "utter_handoff_cancelled": "好的，已取消转人工，您可以继续向智能助手提问。(Cancelled; the assistant is here again.)",
    "utter_handoff_rated": "感谢您的评价（{rating} 分），祝您办事顺利！(Thank you for rating us {rating}/5.)",
    "utter_handoff_returned": "工作人员已将对话转回智能助手小云，您可以继续办理。(Back with the assistant.)",
    "utter_handoff_claimed": "您好，我是工作人员{agent}，很高兴为您服务。(Hello, {agent} is with you now.)",
    "utter_handoff_transferred": "正在为您转接给{target}，请稍候。(Transferring you to {target}.)",
    "utter_handoff_rate": "本次人工服务已结束，请您为本次服务评分（1–5 分，5 分最满意）。(Please rate our service, 1–5.)",
}
CANCEL_BUTTON = Button("取消排队", CANCEL_PAYLOAD)


def say(nlg: NLG | None, tracker: Tracker | None, name: str, buttons: Sequence[Button] = (),
        custom: Mapping[str, Any] | None = None, **values: Any) -> BotUttered:
    """The domain response ``name`` if the project has one, else the built-in bilingual text."""
    message = None
    if nlg is not None and nlg.has(name):
        slots = tracker.slots if tracker is not None else {}
        channel = tracker.state.latest_input_channel if tracker is not None else None
        message = nlg.generate(name, slots, channel, **values)
    if message is not None:
        text, data = message.text, message.event_data()
    else:
        text, data = TEXTS[name].format(**values), {}
    all_buttons = [*data.get("buttons", []), *({"title": b.title, "payload": b.payload} for b in buttons)]
    if all_buttons:
        data["buttons"] = all_buttons
    if custom:
        data["custom"] = {**(data.get("custom") or {}), **custom}
    return BotUttered(text, data, {"utter_action": name})


def rating_buttons() -> tuple[Button, ...]:
    return tuple(Button(f"{'★' * n} {n}", rate_payload(n)) for n in range(1, 6))


@dataclass
class HandoffDeps:
    """What the handoff actions and hooks share: the queue, live updates, settings, service hours."""

    store: HandoffStore
    bus: Bus
    config: HandoffConfig
    hours: ServiceHours
    # how many agents are on duty right now (the console counts its logged-in WebSockets)
    agents_online: Callable[[], int] = lambda: 1
    queue_listeners: list[Callable[[], Any]] = field(default_factory=list)
    # the place in the queue each waiting episode was last told, so only changes are pushed
    told: dict[int, int] = field(default_factory=dict)

    def eta_minutes(self, position: int, mean: float | None = None) -> int:
        mean = mean if mean is not None else self.store.mean_handle_seconds()
        minutes = (mean / 60) if mean else self.config.default_handle_minutes
        agents = max(1, self.agents_online())
        return max(1, math.ceil(math.ceil(position / agents) * minutes))

    def waiting_info(self, session: HandoffSession) -> dict[str, Any]:
        position = self.store.position(session)
        return {"state": session.state, "position": position, "ahead": max(0, position - 1),
                "eta_minutes": self.eta_minutes(position), "team": session.team}

    def queue_changed(self) -> None:
        for listener in self.queue_listeners:
            listener()


def _channel(tracker: Tracker) -> str:
    return tracker.state.latest_input_channel or "rest"


def queue_item(session: HandoffSession, preview: str = "") -> dict[str, Any]:
    return {**session.to_json(), "preview": preview}


@dataclass
class HandoffAction:
    """A citizen wants a person (or the bot gave up): queue the conversation, or out of hours offer a message."""

    deps: HandoffDeps
    name: str = ACTION_HANDOFF

    async def run(self, ctx: ActionContext) -> list[Event]:
        d, tracker = self.deps, ctx.tracker
        trigger = detect(tracker.latest_message, d.config) or fallback_trigger(tracker)
        existing = d.store.open_for(tracker.conversation_id)
        if existing is not None:
            return [self._status(ctx, existing)]
        if not d.hours.is_open(ctx.now):
            nxt = d.hours.next_open(ctx.now)
            return [
                st.transition(st.OFFERED_MESSAGE, st.BOT, st.BOT, reason=trigger.reason),
                say(ctx.nlg, tracker, "utter_handoff_closed_hours",
                    (Button("我要留言", LEAVE_MESSAGE_PAYLOAD), Button("不用了", "/deny")),
                    hours=d.hours.describe(), next_open=_when(nxt)),
            ]
        team = d.config.complaint_team if trigger.reason == "complaint" and d.config.complaint_team else d.config.default_team
        session = d.store.open(tracker.conversation_id, _channel(tracker), trigger.reason, team,
                               ctx.now.timestamp(), priority=trigger.priority)
        if session is None:  # a concurrent request opened one a moment ago
            session = d.store.open_for(tracker.conversation_id)
            return [self._status(ctx, session)] if session else []
        info = d.waiting_info(session)
        d.told[session.id] = info["position"]
        d.bus.publish({"type": "queue", "op": "added", "session": queue_item(session, _preview(tracker)),
                       "detail": trigger.detail})
        d.queue_changed()
        return [
            st.transition("queued", st.BOT, WAITING, reason=trigger.reason, detail=trigger.detail, team=team,
                          session_id=session.id, position=info["position"], eta_minutes=info["eta_minutes"]),
            st.pause(),
            say(ctx.nlg, tracker, "utter_handoff_queued", (CANCEL_BUTTON,), {"handoff": info}, **info),
        ]

    def _status(self, ctx: ActionContext, session: HandoffSession) -> BotUttered:
        if session.state == WAITING:
            info = self.deps.waiting_info(session)
            return say(ctx.nlg, ctx.tracker, "utter_handoff_already_queued", (CANCEL_BUTTON,), {"handoff": info}, **info)
        return say(ctx.nlg, ctx.tracker, "utter_handoff_with_agent")


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "（待定）"
    return moment.strftime("%m月%d日 %H:%M")


def _preview(tracker: Tracker) -> str:
    from assistant.handoff.view import mask_text

    last = tracker.latest_user_event()
    return mask_text(last.text or "")[:120] if last else ""


def fallback_trigger(tracker: Tracker) -> Trigger:
    from assistant.handoff.policy import ladder_exhausted

    return Trigger("fallback", 0, "fallback ladder") if ladder_exhausted(tracker) else Trigger("request", 0)


def cancel_events(deps: HandoffDeps, nlg: NLG | None, tracker: Tracker, now: float) -> list[Event]:
    """Leave the queue: only a waiting episode can be cancelled (a claim that won the race stands)."""
    session = deps.store.open_for(tracker.conversation_id)
    if session is None or session.state != WAITING:
        return []
    done = deps.store.transition(session.id, (WAITING,), CANCELLED, ended_at=now)
    if done is None:
        return []
    deps.bus.publish({"type": "queue", "op": "removed", "session": queue_item(done), "why": "cancelled"})
    deps.queue_changed()
    return [
        st.transition("cancelled", WAITING, st.BOT, session_id=session.id),
        st.resume(),
        say(nlg, tracker, "utter_handoff_cancelled", (), {"handoff": {"state": st.BOT}}),
    ]


@dataclass
class CancelAction:
    deps: HandoffDeps
    name: str = ACTION_CANCEL

    async def run(self, ctx: ActionContext) -> list[Event]:
        return cancel_events(self.deps, ctx.nlg, ctx.tracker, ctx.now.timestamp())


@dataclass
class LeaveMessageAction:
    deps: HandoffDeps
    name: str = ACTION_LEAVE_MESSAGE

    async def run(self, ctx: ActionContext) -> list[Event]:
        return [st.transition(st.AWAITING_MESSAGE, st.BOT, st.BOT), say(ctx.nlg, ctx.tracker, "utter_handoff_ask_message")]


@dataclass
class TicketAction:
    """The citizen's message out of hours becomes a ticket with a reference number."""

    deps: HandoffDeps
    name: str = ACTION_TICKET

    async def run(self, ctx: ActionContext) -> list[Event]:
        d, tracker = self.deps, ctx.tracker
        last = tracker.latest_user_event()
        body = (last.text or "").strip() if last else ""
        ticket = d.store.create_ticket(tracker.conversation_id, _channel(tracker), body, ctx.now.timestamp(),
                                       d.config.ticket_prefix)
        d.bus.publish({"type": "ticket", "op": "added", "ref": ticket.ref, "conversation_id": ticket.conversation_id})
        return [
            st.transition("ticket", st.BOT, st.BOT, ref=ticket.ref),
            say(ctx.nlg, tracker, "utter_handoff_ticket", (), {"handoff": {"ticket": ticket.ref}}, ref=ticket.ref),
        ]


@dataclass
class RateAction:
    deps: HandoffDeps
    name: str = ACTION_RATE

    async def run(self, ctx: ActionContext) -> list[Event]:
        rating = parse_rating(ctx.tracker.latest_message)
        if rating is None:
            return []
        session = self.deps.store.rate(ctx.tracker.conversation_id, rating)
        if session is None:
            return []
        self.deps.bus.publish({"type": "rated", "conversation_id": session.conversation_id, "rating": rating,
                               "session_id": session.id})
        return [
            st.transition("rated", st.BOT, st.BOT, rating=rating, session_id=session.id),
            say(ctx.nlg, ctx.tracker, "utter_handoff_rated", rating=rating),
        ]


@dataclass
class ResumeAction:
    """Run by the console's "return to the bot" (``Agent.execute``) after the queue row moved to ``returned``:
    the engine then predicts on, so a half-filled form asks its field again."""

    deps: HandoffDeps
    name: str = ACTION_RESUME

    async def run(self, ctx: ActionContext) -> list[Event]:
        session = self.deps.store.latest_for(ctx.tracker.conversation_id)
        data: dict[str, Any] = {}
        if session is not None:
            data = {"session_id": session.id, "agent": session.agent_id}
        return [
            st.transition("returned", "with_agent", st.BOT, **data),
            st.resume(),
            say(ctx.nlg, ctx.tracker, "utter_handoff_returned", (), {"handoff": {"state": st.BOT}}),
        ]


@dataclass
class SessionStartKeepingHandoff:
    """A new session (the citizen was quiet longer than ``session_expiration_time``) resets the engine's state,
    ``paused`` included; a conversation still queued or with an agent must stay with staff."""

    inner: Action
    deps: HandoffDeps
    name: str = "action_session_start"

    async def run(self, ctx: ActionContext) -> list[Event]:
        events = list(await self.inner.run(ctx))
        if self.deps.store.open_for(ctx.tracker.conversation_id) is not None:
            events.append(st.pause())
        return events


def handoff_actions(deps: HandoffDeps) -> list[Action]:
    return [HandoffAction(deps), CancelAction(deps), LeaveMessageAction(deps), TicketAction(deps), RateAction(deps),
            ResumeAction(deps)]
