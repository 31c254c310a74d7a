"""Conversation state derived from events by a pure fold.

``apply(state, event)`` handles every event except the two "undo" kinds, which need history; ``replay`` resolves
those first (as Rasa's ``applied_events`` does) and then folds ``apply`` over what remains.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from assistant.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    CustomEvent,
    Event,
    FollowupAction,
    LoopInterrupted,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
    event_to_dict,
)

ACTION_LISTEN = "action_listen"
REQUESTED_SLOT = "requested_slot"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class DialogueState:
    slot_defaults: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    slots: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    active_loop: str | None = None
    loop_interrupted: bool = False
    # the active loop's action refused the latest input (a digression); cleared when the loop runs again
    loop_rejected: bool = False
    latest_message: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    latest_input_channel: str | None = None
    latest_action_name: str | None = None
    latest_bot_text: str | None = None
    followup_action: str | None = None
    paused: bool = False
    latest_event_time: float | None = None

    @staticmethod
    def initial(slot_defaults: Mapping[str, Any] | None = None) -> DialogueState:
        defaults = MappingProxyType(dict(slot_defaults or {}))
        return DialogueState(slot_defaults=defaults, slots=defaults)


def _reset(state: DialogueState) -> DialogueState:
    return DialogueState(slot_defaults=state.slot_defaults, slots=state.slot_defaults)


def _evolve(state: DialogueState, **changes: Any) -> DialogueState:
    # dataclasses.replace re-runs __init__ and dominates a turn's cost; a frozen copy with changes is enough
    new = object.__new__(DialogueState)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


def apply(state: DialogueState, event: Event) -> DialogueState:
    """The state after ``event``. Pure: ``state`` is never changed."""
    s = state
    ts = event.timestamp
    if isinstance(event, UserUttered):
        message = dict(event.parse_data)
        message.setdefault("text", event.text)
        return _evolve(s, latest_message=MappingProxyType(message), latest_input_channel=event.input_channel,
                       latest_event_time=ts)
    if isinstance(event, ActionExecuted):
        rejected = False if event.action_name == s.active_loop else s.loop_rejected
        followup = None if event.action_name == s.followup_action else s.followup_action
        return _evolve(s, latest_action_name=event.action_name, loop_rejected=rejected, followup_action=followup,
                       latest_event_time=ts)
    if isinstance(event, SlotSet):
        slots = dict(s.slots)
        slots[event.key] = event.value
        return _evolve(s, slots=MappingProxyType(slots), latest_event_time=ts)
    if isinstance(event, ActiveLoop):
        return _evolve(s, active_loop=event.name, loop_interrupted=False, loop_rejected=False, latest_event_time=ts)
    if isinstance(event, LoopInterrupted):
        return _evolve(s, loop_interrupted=event.is_interrupted, latest_event_time=ts)
    if isinstance(event, ActionExecutionRejected):
        return _evolve(s, loop_rejected=s.loop_rejected or event.action_name == s.active_loop, latest_event_time=ts)
    if isinstance(event, FollowupAction):
        return _evolve(s, followup_action=event.name, latest_event_time=ts)
    if isinstance(event, BotUttered):
        return _evolve(s, latest_bot_text=event.text, latest_event_time=ts)
    if isinstance(event, (Restarted, SessionStarted)):
        return _evolve(_reset(s), latest_event_time=ts)
    if isinstance(event, AllSlotsReset):
        return _evolve(s, slots=s.slot_defaults, latest_event_time=ts)
    if isinstance(event, CustomEvent):
        if event.name == "pause":
            return _evolve(s, paused=True, latest_event_time=ts)
        if event.name == "resume":
            return _evolve(s, paused=False, latest_event_time=ts)
    return _evolve(s, latest_event_time=ts)


def applied_events(events: Iterable[Event]) -> list[Event]:
    """Events that still count: restarts cut history, reverts remove what they undo (Rasa semantics)."""
    out: list[Event] = []
    for e in events:
        if isinstance(e, ActionReverted):
            _undo_till(out, ActionExecuted)
            continue
        if isinstance(e, UserUtteranceReverted):
            _undo_till(out, UserUttered)
            continue
        if isinstance(e, (Restarted, SessionStarted)):
            out = []
        out.append(e)
    return out


def _undo_till(events: list[Event], kind: type[Event]) -> None:
    while events:
        e = events.pop()
        if isinstance(e, kind) and not (isinstance(e, ActionExecuted) and e.action_name == ACTION_LISTEN):
            return


def replay(events: Iterable[Event], slot_defaults: Mapping[str, Any] | None = None) -> DialogueState:
    state = DialogueState.initial(slot_defaults)
    for e in applied_events(events):
        state = apply(state, e)
    return state


def _has_undo(events: Iterable[Event]) -> bool:
    return any(isinstance(e, (ActionReverted, UserUtteranceReverted)) for e in events)


@dataclass(frozen=True)
class Tracker:
    conversation_id: str
    events: tuple[Event, ...] = ()
    slot_defaults: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False)
    # a state already folded by ``with_events``; computed lazily otherwise
    precomputed: DialogueState | None = field(default=None, repr=False, compare=False)
    # the ``derived`` memo of the tracker this one extends and how many of ``events`` it covered, so a view can
    # be extended by the new events instead of recomputed over the whole conversation (the memo, not the parent
    # tracker, is kept: a chain of parents would hold every earlier events tuple alive)
    inherited: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    inherited_len: int = field(default=0, repr=False, compare=False)

    @cached_property
    def derived(self) -> dict[str, Any]:
        """Memo for views other modules compute from these events (e.g. the policies' turn view), so each is
        computed once per tracker however many policies ask."""
        return {}

    @cached_property
    def state(self) -> DialogueState:
        if self.precomputed is not None:
            return self.precomputed
        return replay(self.events, self.slot_defaults)

    def with_events(self, new: Iterable[Event]) -> Tracker:
        """A tracker with ``new`` appended; folds incrementally unless an undo forces a replay."""
        new = tuple(new)
        if _has_undo(new):
            return Tracker(self.conversation_id, self.events + new, self.slot_defaults)
        state = self.state
        for e in new:
            state = apply(state, e)
        # nothing computed for this tracker (no prediction after action_listen, say): hand on what it inherited
        memo, covered = (self.derived, len(self.events)) if self.derived else (self.inherited, self.inherited_len)
        return Tracker(self.conversation_id, self.events + new, self.slot_defaults, state, memo, covered)

    # --- convenient views -------------------------------------------------------------------------------
    @property
    def slots(self) -> Mapping[str, Any]:
        return self.state.slots

    def get_slot(self, name: str) -> Any:
        return self.state.slots.get(name)

    @property
    def active_loop(self) -> str | None:
        return self.state.active_loop

    @property
    def requested_slot(self) -> str | None:
        return self.state.slots.get(REQUESTED_SLOT)

    @property
    def latest_message(self) -> Mapping[str, Any]:
        return self.state.latest_message

    @property
    def latest_intent(self) -> str | None:
        intent = self.state.latest_message.get("intent") or {}
        return intent.get("name")

    @property
    def latest_action_name(self) -> str | None:
        return self.state.latest_action_name

    @property
    def followup_action(self) -> str | None:
        return self.state.followup_action

    @property
    def paused(self) -> bool:
        return self.state.paused

    def applied_events(self) -> list[Event]:
        return applied_events(self.events)

    def events_after_latest_restart(self) -> list[Event]:
        for i in range(len(self.events) - 1, -1, -1):
            if isinstance(self.events[i], Restarted):
                return list(self.events[i + 1 :])
        return list(self.events)

    def latest_user_event(self) -> UserUttered | None:
        for e in reversed(self.events):
            if isinstance(e, UserUttered):
                return e
        return None

    def events_since_last_user(self) -> list[Event]:
        out: list[Event] = []
        for e in reversed(self.events):
            if isinstance(e, UserUttered):
                break
            out.append(e)
        out.reverse()
        return out

    def to_rasa_json(self) -> dict[str, Any]:
        """The tracker as rasa-sdk expects it in an action-server request."""
        s = self.state
        active_loop: dict[str, Any] = {}
        if s.active_loop:
            active_loop = {
                "name": s.active_loop,
                "is_interrupted": s.loop_interrupted,
                "rejected": s.loop_rejected,
                "validate": True,
            }
        latest_message = dict(s.latest_message)
        return {
            "sender_id": self.conversation_id,
            "slots": dict(s.slots),
            "latest_message": latest_message,
            "latest_event_time": s.latest_event_time,
            "followup_action": s.followup_action,
            "paused": s.paused,
            "events": [event_to_dict(e) for e in self.events],
            "latest_input_channel": s.latest_input_channel,
            "active_loop": active_loop,
            "latest_action": {"action_name": s.latest_action_name} if s.latest_action_name else {},
            "latest_action_name": s.latest_action_name,
        }
