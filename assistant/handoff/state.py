"""Handoff transitions as tracker events, and the conversation's handoff state read back from them.

Every transition is ``CustomEvent("handoff", {"transition": ..., "from": ..., "to": ..., ...})``; the engine's own
``pause``/``resume`` events (which make ``Agent`` keep messages for staff instead of answering) travel alongside.
Notes and delivery reports are events too, so the tracker alone tells the whole story of a conversation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from assistant.events import CustomEvent, Event, Restarted
from assistant.tracker import Tracker

HANDOFF = "handoff"
NOTE = "handoff_note"
DELIVERY = "handoff_delivery"
PAUSE = CustomEvent("pause")

BOT = "bot"
# transitions that leave the conversation with the bot but waiting for something from the citizen
OFFERED_MESSAGE = "offered_message"
AWAITING_MESSAGE = "awaiting_message"


def pause() -> CustomEvent:
    return CustomEvent("pause")


def resume() -> CustomEvent:
    return CustomEvent("resume")


def transition(name: str, frm: str, to: str, **data: Any) -> CustomEvent:
    return CustomEvent(HANDOFF, {"transition": name, "from": frm, "to": to, **{k: v for k, v in data.items() if v is not None}})


def handoff_events(events: Iterable[Event]) -> list[CustomEvent]:
    return [e for e in events if isinstance(e, CustomEvent) and e.name == HANDOFF]


def latest_transition(tracker: Tracker) -> Mapping[str, Any] | None:
    """The latest handoff transition since the last restart (None when there has been none)."""
    for e in reversed(tracker.events):
        if isinstance(e, Restarted):
            return None
        if isinstance(e, CustomEvent) and e.name == HANDOFF:
            return e.data
    return None


def state_of(tracker: Tracker) -> str:
    t = latest_transition(tracker)
    return str(t.get("to", BOT)) if t else BOT
