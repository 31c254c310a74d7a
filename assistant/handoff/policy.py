"""HandoffPolicy: asked before every other policy (a citizen who asks for a person mid-form gets one).

It predicts ``action_handoff`` when the latest message triggers a handoff (a request, a complaint, an urgent
topic), when the citizen accepts the human the fallback ladder offered, or when the ladder offered one and the
next turn cannot be understood either; and it carries the out-of-hours message and the rating after a close.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.domain import Domain
from assistant.events import ActionExecuted, UserUttered
from assistant.handoff import state as st
from assistant.handoff.actions import (
    ACTION_CANCEL,
    ACTION_HANDOFF,
    ACTION_LEAVE_MESSAGE,
    ACTION_RATE,
    ACTION_RESUME,
    ACTION_TICKET,
)
from assistant.handoff.config import HandoffConfig
from assistant.handoff.triggers import LEAVE_MESSAGE_PAYLOAD, detect, is_cancel, parse_rating
from assistant.policies import Prediction
from assistant.policies.fallback import ACTION_OFFER_HUMAN
from assistant.tracker import ACTION_LISTEN, Tracker

DEFAULT_PRIORITY = 8  # above FormPolicy (7): "转人工" inside a form is not an answer to the form's question
_OWN = frozenset({ACTION_HANDOFF, ACTION_CANCEL, ACTION_LEAVE_MESSAGE, ACTION_TICKET, ACTION_RATE, "action_human_handoff"})


def previous_bot_action(tracker: Tracker) -> str | None:
    """The last action other than listening before the latest user message."""
    seen_user = False
    for e in reversed(tracker.events):
        if isinstance(e, UserUttered):
            if seen_user:
                return None
            seen_user = True
        elif seen_user and isinstance(e, ActionExecuted) and e.action_name != ACTION_LISTEN:
            return e.action_name
    return None


def _unsure(tracker: Tracker, threshold: float) -> bool:
    intent = tracker.latest_message.get("intent") or {}
    name = intent.get("name")
    return not name or name == "nlu_fallback" or float(intent.get("confidence") or 0.0) < threshold


def ladder_exhausted(tracker: Tracker, threshold: float = 0.4) -> bool:
    return previous_bot_action(tracker) == ACTION_OFFER_HUMAN and _unsure(tracker, threshold)


@dataclass(frozen=True)
class HandoffPolicy:
    config: HandoffConfig
    priority: int = DEFAULT_PRIORITY
    name: str = "HandoffPolicy"

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction | None:
        latest = tracker.latest_action_name
        if latest in _OWN:
            return Prediction(ACTION_LISTEN, 1.0, self.name)
        if latest != ACTION_LISTEN or tracker.paused or not self.config.enabled:
            return None
        message = tracker.latest_message
        text = str(message.get("text") or "")
        transition = st.latest_transition(tracker) or {}
        kind = transition.get("transition")
        intent = (message.get("intent") or {}).get("name")
        if kind == st.AWAITING_MESSAGE:
            return Prediction(ACTION_CANCEL if is_cancel(text, self.config) else ACTION_TICKET, 1.0, self.name)
        if kind == st.OFFERED_MESSAGE and (text.strip() == LEAVE_MESSAGE_PAYLOAD or intent == "affirm"):
            return Prediction(ACTION_LEAVE_MESSAGE, 1.0, self.name)
        if kind == "closed" and parse_rating(message) is not None:
            return Prediction(ACTION_RATE, 1.0, self.name)
        if detect(message, self.config) is not None:
            return Prediction(ACTION_HANDOFF, 1.0, self.name)
        t = self.config.triggers
        accepted = intent in t.accept_intents or (t.after_failed_offer and _unsure(tracker, 0.4) and intent != "deny")
        if accepted and previous_bot_action(tracker) == ACTION_OFFER_HUMAN:
            return Prediction(ACTION_HANDOFF, 1.0, self.name)
        return None


__all__ = ["HandoffPolicy", "ACTION_RESUME", "ladder_exhausted"]
