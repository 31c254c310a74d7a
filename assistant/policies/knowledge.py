"""KnowledgePolicy: policy questions go to the knowledge base (``action_knowledge_answer``).

Question intents (configurable; by default ``ask_*``, ``faq*``, ``policy_*`` and ``out_of_scope``) are always
answered from the knowledge base, which abstains honestly when it has no answer. Any other message that no
higher-priority policy handled (``nlu_fallback``, a service intent without a rule, …) is tried there with the
hint ``only_if_known``: the action searches (off the event loop) and, when the knowledge base has no answer,
rejects itself so the fallback ladder takes over. Conversational intents (greetings, yes/no, form answers) never
go there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from assistant.actions import KnowledgeSearch
from assistant.domain import Domain
from assistant.policies import PolicyBuildContext, Prediction, check_settings
from assistant.tracker import ACTION_LISTEN, Tracker

ACTION_KNOWLEDGE_ANSWER = "action_knowledge_answer"
ONLY_IF_KNOWN = "only_if_known"
DEFAULT_PREFIXES = ("ask_", "faq", "policy_")
_SETTINGS = ("priority", "intents", "fallback_intents", "k", "answer_if_known", "exclude_intents")
CONVERSATIONAL = frozenset({
    "greet", "goodbye", "thank", "affirm", "deny", "inform", "skip", "cancel", "correct_slot", "request_human",
    "restart", "back", "chitchat", "complain", "book_appointment",
})


class KnowledgePolicy:
    name = "KnowledgePolicy"

    def __init__(
        self,
        knowledge: KnowledgeSearch | None,
        intents: Iterable[str] | None = None,
        fallback_intents: Iterable[str] = ("nlu_fallback",),
        priority: int = 2,
        k: int = 5,
        answer_if_known: bool = True,
        exclude_intents: Iterable[str] = CONVERSATIONAL,
    ) -> None:
        self.answer_if_known = answer_if_known
        self.exclude_intents = frozenset(exclude_intents)
        self.knowledge = knowledge
        self.intents = frozenset(intents) if intents is not None else None
        self.fallback_intents = frozenset(fallback_intents)
        self.priority = priority
        self.k = k

    @staticmethod
    def build(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> KnowledgePolicy:
        check_settings("KnowledgePolicy", settings, _SETTINGS)
        return KnowledgePolicy(
            ctx.knowledge,
            settings.get("intents"),
            settings.get("fallback_intents", ("nlu_fallback",)),
            int(settings.get("priority", 2)),
            int(settings.get("k", 5)),
            bool(settings.get("answer_if_known", True)),
            settings.get("exclude_intents", CONVERSATIONAL),
        )

    def is_question(self, intent: str) -> bool:
        if self.intents is not None:
            return intent in self.intents
        return intent == "out_of_scope" or intent.startswith(DEFAULT_PREFIXES)

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction | None:
        if tracker.latest_action_name != ACTION_LISTEN:
            return None
        intent = tracker.latest_intent
        if not intent:
            return None
        if self.is_question(intent):
            return Prediction(ACTION_KNOWLEDGE_ANSWER, 1.0, self.name)
        known_only = intent in self.fallback_intents or (self.answer_if_known and intent not in self.exclude_intents)
        if known_only and self.knowledge is not None and tracker.latest_message.get("text"):
            return Prediction(ACTION_KNOWLEDGE_ANSWER, 1.0, self.name, {ONLY_IF_KNOWN: True})
        return None
