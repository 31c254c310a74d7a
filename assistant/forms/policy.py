"""FormPolicy: while a form is active it handles every message; it also starts and resumes forms.

As in Rasa, the form runs on each user message; if it rejects the message (a digression), the ensemble asks the
other policies, and once they have answered, this policy predicts the form again so it asks its field again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.domain import Domain
from assistant.forms.control import Control, detect, is_digression
from assistant.forms.extraction import extract
from assistant.forms.spec import FormSpec, form_spec
from assistant.forms.state import PAUSED_SLOT, interrupted_form
from assistant.policies import Policy, PolicyBuildContext, Prediction, check_settings
from assistant.tracker import ACTION_LISTEN, Tracker

DEFAULT_PRIORITY = 7  # above rules (6): a rule must not steal the answer to a form's question


@dataclass(frozen=True)
class FormPolicy:
    forms: Mapping[str, FormSpec]
    priority: int = DEFAULT_PRIORITY
    trigger_threshold: float = 0.6
    name: str = "FormPolicy"

    @staticmethod
    def build(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> FormPolicy:
        check_settings("FormPolicy", settings, ("priority", "trigger_threshold"))
        forms = {name: form_spec(ctx.domain, name) for name in ctx.domain.forms}
        return FormPolicy(
            forms,
            int(settings.get("priority", DEFAULT_PRIORITY)),
            float(settings.get("trigger_threshold", 0.6)),
        )

    @staticmethod
    def _answers(form: FormSpec, message: Mapping[str, Any]) -> bool:
        """The message carries a typed value for one of the form's fields (an ID number, a phone, a date);
        a word that merely matches a choice is not enough to pull the citizen back into the form."""
        found = extract(form, message, {}, None)
        return any(not (c.from_text or c.incidental) for c in found.candidates.values()) or bool(
            found.rejected
        )

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction | None:
        loop = tracker.active_loop
        latest = tracker.latest_action_name
        if loop in self.forms:
            if latest == loop:
                return Prediction(ACTION_LISTEN, 1.0, self.name)  # the form has asked; wait for the answer
            # a user message, or a digression answered by another action: back to the form
            return Prediction(loop, 1.0, self.name)
        if latest != ACTION_LISTEN:
            return None
        message = tracker.latest_message
        intent = (message.get("intent") or {}).get("name")
        confidence = float((message.get("intent") or {}).get("confidence") or 0.0)
        paused = tracker.get_slot(PAUSED_SLOT) or interrupted_form(tracker)
        if paused in self.forms:
            controls = detect(str(message.get("text") or ""), intent, confidence)
            if Control.RESUME in controls or intent in self.forms[paused].trigger_intents:
                return Prediction(paused, 1.0, self.name)
            text = str(message.get("text") or "")
            if not is_digression(text, intent, confidence) and self._answers(self.forms[paused], message):
                return Prediction(paused, 1.0, self.name)
        if confidence >= self.trigger_threshold:
            for spec in self.forms.values():
                if intent in spec.trigger_intents:
                    return Prediction(spec.name, confidence, self.name)
        return None


def form_policy_factory(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> Policy:
    return FormPolicy.build(ctx, settings)
