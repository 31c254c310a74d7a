"""Conversation events: immutable values with Rasa's event names and JSON shapes.

A tracker is nothing but a sequence of these; state is derived from them by ``assistant.tracker.apply``.
``event_to_dict``/``event_from_dict`` speak Rasa's tracker JSON, which is also what rasa-sdk actions return.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

JsonDict = dict[str, Any]


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Event:
    type_name: ClassVar[str] = ""
    # keyword-only so each subclass keeps its own positional fields; not part of equality (as in Rasa): two
    # events are the same event whenever they happened
    timestamp: float = field(default_factory=_now, kw_only=True, compare=False)


@dataclass(frozen=True)
class UserUttered(Event):
    type_name: ClassVar[str] = "user"
    text: str | None
    parse_data: JsonDict = field(default_factory=dict)
    input_channel: str | None = None
    message_id: str | None = None
    metadata: JsonDict = field(default_factory=dict)

    @property
    def intent_name(self) -> str | None:
        intent = self.parse_data.get("intent") or {}
        return intent.get("name")

    @property
    def entities(self) -> list[JsonDict]:
        return list(self.parse_data.get("entities") or [])


@dataclass(frozen=True)
class BotUttered(Event):
    """``data`` holds what a channel may render: ``buttons``, ``citations``, ``custom``, ``image``."""

    type_name: ClassVar[str] = "bot"
    text: str | None
    data: JsonDict = field(default_factory=dict)
    metadata: JsonDict = field(default_factory=dict)


@dataclass(frozen=True)
class ActionExecuted(Event):
    type_name: ClassVar[str] = "action"
    action_name: str
    policy: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class SlotSet(Event):
    type_name: ClassVar[str] = "slot"
    key: str
    value: Any = None


@dataclass(frozen=True)
class ActiveLoop(Event):
    type_name: ClassVar[str] = "active_loop"
    name: str | None


@dataclass(frozen=True)
class FollowupAction(Event):
    type_name: ClassVar[str] = "followup"
    name: str


@dataclass(frozen=True)
class Restarted(Event):
    type_name: ClassVar[str] = "restart"


@dataclass(frozen=True)
class SessionStarted(Event):
    type_name: ClassVar[str] = "session_started"


@dataclass(frozen=True)
class ActionReverted(Event):
    type_name: ClassVar[str] = "undo"


@dataclass(frozen=True)
class UserUtteranceReverted(Event):
    type_name: ClassVar[str] = "rewind"


@dataclass(frozen=True)
class AllSlotsReset(Event):
    type_name: ClassVar[str] = "reset_slots"


@dataclass(frozen=True)
class LoopInterrupted(Event):
    type_name: ClassVar[str] = "loop_interrupted"
    is_interrupted: bool


@dataclass(frozen=True)
class ActionExecutionRejected(Event):
    type_name: ClassVar[str] = "action_execution_rejected"
    action_name: str
    policy: str | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class CustomEvent(Event):
    """Any other kind (handoff transitions, rasa-sdk ``pause``/``reminder``…): kept and stored verbatim."""

    name: str
    data: JsonDict = field(default_factory=dict)


def _user_to(e: UserUttered) -> JsonDict:
    return {
        "text": e.text,
        "parse_data": e.parse_data,
        "input_channel": e.input_channel,
        "message_id": e.message_id,
        "metadata": e.metadata,
    }


def _action_to(e: ActionExecuted) -> JsonDict:
    return {"name": e.action_name, "policy": e.policy, "confidence": e.confidence}


_TO_DICT: dict[type[Event], Any] = {
    UserUttered: _user_to,
    BotUttered: lambda e: {"text": e.text, "data": e.data, "metadata": e.metadata},
    ActionExecuted: _action_to,
    SlotSet: lambda e: {"name": e.key, "value": e.value},
    ActiveLoop: lambda e: {"name": e.name},
    FollowupAction: lambda e: {"name": e.name},
    LoopInterrupted: lambda e: {"is_interrupted": e.is_interrupted},
    ActionExecutionRejected: lambda e: {"name": e.action_name, "policy": e.policy, "confidence": e.confidence},
}

_BY_NAME: dict[str, type[Event]] = {
    cls.type_name: cls
    for cls in (
        UserUttered,
        BotUttered,
        ActionExecuted,
        SlotSet,
        ActiveLoop,
        FollowupAction,
        Restarted,
        SessionStarted,
        ActionReverted,
        UserUtteranceReverted,
        AllSlotsReset,
        LoopInterrupted,
        ActionExecutionRejected,
    )
}


def event_to_dict(event: Event) -> JsonDict:
    """Rasa's JSON shape: ``{"event": "user", "timestamp": ..., "text": ..., "parse_data": ...}``."""
    if isinstance(event, CustomEvent):
        return {**event.data, "event": event.name, "timestamp": event.timestamp}
    out: JsonDict = {"event": event.type_name, "timestamp": event.timestamp}
    to = _TO_DICT.get(type(event))
    if to is not None:
        out.update(to(event))
    return out


def _timestamp(d: JsonDict) -> float:
    # rasa-sdk events carry ``"timestamp": None``: they happen when the engine applies them
    ts = d.get("timestamp")
    return float(ts) if ts is not None else _now()


def event_from_dict(d: JsonDict) -> Event:
    """Inverse of ``event_to_dict``; also accepts rasa-sdk's dicts and Rasa 2's ``form`` event."""
    if not isinstance(d, dict) or not isinstance(d.get("event"), str):
        raise ValueError(f"not an event (需要 'event' 字段 / missing 'event' key): {d!r}")
    kind = d["event"]
    ts = _timestamp(d)
    if kind == "form":  # Rasa 2 name of active_loop
        kind = "active_loop"
    cls = _BY_NAME.get(kind)
    if cls is None:
        data = {k: v for k, v in d.items() if k not in ("event", "timestamp")}
        return CustomEvent(kind, data, timestamp=ts)
    if cls is UserUttered:
        return UserUttered(
            d.get("text"),
            dict(d.get("parse_data") or {}),
            d.get("input_channel"),
            d.get("message_id"),
            dict(d.get("metadata") or {}),
            timestamp=ts,
        )
    if cls is BotUttered:
        return BotUttered(d.get("text"), dict(d.get("data") or {}), dict(d.get("metadata") or {}), timestamp=ts)
    if cls is ActionExecuted:
        return ActionExecuted(d["name"], d.get("policy"), d.get("confidence"), timestamp=ts)
    if cls is SlotSet:
        return SlotSet(d["name"], d.get("value"), timestamp=ts)
    if cls is ActiveLoop:
        return ActiveLoop(d.get("name"), timestamp=ts)
    if cls is FollowupAction:
        return FollowupAction(d["name"], timestamp=ts)
    if cls is LoopInterrupted:
        return LoopInterrupted(bool(d.get("is_interrupted")), timestamp=ts)
    if cls is ActionExecutionRejected:
        return ActionExecutionRejected(d["name"], d.get("policy"), d.get("confidence"), timestamp=ts)
    return cls(timestamp=ts)
