"""A real agent for form tests: our domain fixture, the rule-based Chinese NLU, the engine's policies and store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

import assistant.forms  # noqa: F401  (registers FormPolicy)
from assistant.actions import ActionRegistry
from assistant.agent import Agent, BotReply, UserMessage
from assistant.custom_actions import CustomActionRunner
from assistant.domain import Domain
from assistant.forms.config import FormsConfig
from assistant.forms.submission import Submitter
from assistant.forms.wiring import build_forms_runtime
from assistant.nlg import NLG
from assistant.policies import PolicyBuildContext, PolicyEnsemble, build_policies
from assistant.store import SQLTrackerStore, TrackerStore
from nlu.config import ComponentConfig
from nlu.pipeline import Interpreter, train_interpreter
from nlu.training_data import TrainingData

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
# a Friday: tomorrow is a weekend, the first bookable working day is Monday 2026-11-30
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)

RULE_BASED_PIPELINE = [
    "ChineseNormalizer",
    "JiebaTokenizer",
    "IdCardExtractor",
    "PhoneExtractor",
    "ChineseTimeExtractor",
    "PersonNameExtractor",
]


def load_domain() -> Domain:
    return Domain.from_dict(
        yaml.safe_load((FIXTURES / "domain.yml").read_text(encoding="utf-8")), "domain.yml"
    )


@lru_cache(maxsize=1)
def interpreter() -> Interpreter:
    """The real NLU with its rule-based extractors only: no intent model, so every form control phrase is
    recognised without help from a classifier (the hardest case)."""
    pipeline = [ComponentConfig(name=n) for n in RULE_BASED_PIPELINE]
    return train_interpreter(TrainingData(), pipeline, encoder_factory=None)


def build_agent(
    store: TrackerStore,
    submitter: Submitter,
    *,
    knowledge: Any = None,
    clock: Callable[[], datetime] = lambda: NOW,
    forms_config: FormsConfig | None = None,
    custom_actions: CustomActionRunner | None = None,
) -> Agent:
    domain = load_domain()
    runtime = build_forms_runtime(
        ROOT, domain, forms_config or FormsConfig(), submitter, custom_actions=custom_actions
    )
    policies, warnings = build_policies(
        [{"name": "FormPolicy"}, {"name": "RulePolicy"}, {"name": "MemoizationPolicy"}],
        PolicyBuildContext(domain, knowledge=knowledge),
    )
    return Agent(
        domain,
        interpreter(),
        PolicyEnsemble(policies, warnings),
        ActionRegistry.for_domain(domain, runtime.actions),
        store,
        NLG(domain, seed=0),
        knowledge=knowledge,
        clock=clock,
    )


@dataclass
class Chat:
    agent: Agent
    conversation_id: str = "c-1"

    def say(self, text: str) -> list[BotReply]:
        return asyncio.run(self.agent.handle(UserMessage(self.conversation_id, text)))

    def text(self, text: str) -> str:
        return "\n".join(r.text or "" for r in self.say(text))

    def tracker(self) -> Any:
        return asyncio.run(self.agent.tracker(self.conversation_id))

    def slots(self) -> dict[str, Any]:
        return dict(self.tracker().slots)


def sqlite_store(path: Path) -> SQLTrackerStore:
    return SQLTrackerStore(f"sqlite:///{path}")
