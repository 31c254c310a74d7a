"""The fallback ladder: when the NLU is unsure, ask which of the top intents was meant (buttons); after
``max_clarifications`` failed turns in a row, offer a human instead.

It is asked last: besides messages the NLU is unsure of, it takes any message no other policy could handle
(``catch_all``: "please rephrase" first), so an unhandled message climbs the same ladder instead of repeating a
generic fallback.

A failed turn is one the engine could not serve: it clarified, offered a human, fell back, or the knowledge base
abstained. Any served turn resets the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.domain import Domain
from assistant.events import ActionExecuted, BotUttered, UserUttered
from assistant.policies import ACTION_DEFAULT_FALLBACK, PolicyBuildContext, Prediction, check_settings
from assistant.tracker import ACTION_LISTEN, Tracker

ACTION_CLARIFY = "action_clarify_intent"
ACTION_OFFER_HUMAN = "action_offer_human"
FAILURE_ACTIONS = frozenset({ACTION_CLARIFY, ACTION_OFFER_HUMAN, ACTION_DEFAULT_FALLBACK})
_SETTINGS = ("priority", "threshold", "max_clarifications", "fallback_intents", "catch_all")


def failed_turns_before(tracker: Tracker) -> int:
    """How many user turns in a row, before the latest message, the engine failed to serve."""
    count = 0
    failed = False
    seen_latest = False
    for e in reversed(tracker.applied_events()):
        if isinstance(e, UserUttered):
            if seen_latest:
                if not failed:
                    return count
                count += 1
            seen_latest = True
            failed = False
        elif seen_latest and (
            (isinstance(e, ActionExecuted) and e.action_name in FAILURE_ACTIONS)
            or (isinstance(e, BotUttered) and e.metadata.get("abstained"))
        ):
            failed = True
    return count


class FallbackLadderPolicy:
    name = "FallbackLadderPolicy"

    def __init__(
        self,
        threshold: float = 0.4,
        max_clarifications: int = 1,
        fallback_intents: tuple[str, ...] = ("nlu_fallback",),
        priority: int = 1,
        catch_all: bool = True,
    ) -> None:
        self.catch_all = catch_all
        self.threshold = threshold
        self.max_clarifications = max_clarifications
        self.fallback_intents = frozenset(fallback_intents)
        self.priority = priority

    @staticmethod
    def build(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> FallbackLadderPolicy:
        check_settings("FallbackLadderPolicy", settings, _SETTINGS)
        return FallbackLadderPolicy(
            float(settings.get("threshold", 0.4)),
            int(settings.get("max_clarifications", 1)),
            tuple(settings.get("fallback_intents", ("nlu_fallback",))),
            int(settings.get("priority", 1)),
            bool(settings.get("catch_all", True)),
        )

    def is_unsure(self, message: Mapping[str, Any]) -> bool:
        intent = message.get("intent") or {}
        if intent.get("name") in self.fallback_intents or not intent.get("name"):
            return True
        confidence = intent.get("confidence")
        return confidence is not None and float(confidence) < self.threshold

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction | None:
        if tracker.latest_action_name != ACTION_LISTEN:
            return None
        unsure = self.is_unsure(tracker.latest_message)
        if not unsure and not self.catch_all:
            return None
        if failed_turns_before(tracker) >= self.max_clarifications:
            return Prediction(ACTION_OFFER_HUMAN, 1.0, self.name)
        # buttons of the top intents help only when the NLU hesitated; a confident intent nothing handles
        # gets the plain "please rephrase"
        return Prediction(ACTION_CLARIFY if unsure else ACTION_DEFAULT_FALLBACK, 1.0, self.name)
