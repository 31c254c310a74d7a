"""Policies choose the next action. Each is asked in priority order; the first prediction wins.

Policies are built by name from ``config.yml`` ``policies:`` through a registry of factories (``POLICIES``), so the
forms package adds ``"FormPolicy"`` without this module knowing it. Rasa policies we do not implement (TEDPolicy,
UnexpecTEDIntentPolicy, …) are reported by name, never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from assistant.domain import Domain
from assistant.events import ActionExecuted, ActionExecutionRejected, UserUttered
from assistant.rasa_yaml import StoryData
from assistant.tracker import ACTION_LISTEN, Tracker

log = logging.getLogger(__name__)

ACTION_DEFAULT_FALLBACK = "action_default_fallback"


@dataclass(frozen=True)
class Prediction:
    action: str
    confidence: float
    policy: str
    # hints for the action from the policy that chose it (e.g. "answer only if the knowledge base knows")
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Policy(Protocol):
    name: str
    priority: int

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction | None: ...


class PolicyError(ValueError):
    """A policy named in config.yml cannot be built; the message names it (Chinese and English)."""


@dataclass(frozen=True)
class PolicyBuildContext:
    """What a policy factory may use: the domain, rules and stories, the knowledge service."""

    domain: Domain
    story_data: StoryData = field(default_factory=StoryData)
    knowledge: Any = None


PolicyFactory = Callable[[PolicyBuildContext, Mapping[str, Any]], Policy]

# Rasa policies that exist but that this engine does not implement: reported by name at load time
UNSUPPORTED_POLICIES = {
    "TEDPolicy": "machine-learned dialogue policy (TED)",
    "UnexpecTEDIntentPolicy": "unexpected-intent detection (TED)",
    "AugmentedMemoizationPolicy": "augmented memoization (use MemoizationPolicy)",
    "SklearnPolicy": "sklearn dialogue policy",
    "KerasPolicy": "Keras dialogue policy (Rasa 1)",
    "TwoStageFallbackPolicy": "Rasa 1 fallback policy (the fallback ladder replaces it)",
    "MappingPolicy": "Rasa 1 mapping policy (use rules)",
}


def _rule_policy(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> Policy:
    from assistant.policies.rules import RulePolicy

    return RulePolicy.build(ctx, settings)


def _memoization_policy(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> Policy:
    from assistant.policies.memoization import MemoizationPolicy

    return MemoizationPolicy.build(ctx, settings)


def _knowledge_policy(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> Policy:
    from assistant.policies.knowledge import KnowledgePolicy

    return KnowledgePolicy.build(ctx, settings)


def _fallback_policy(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> Policy:
    from assistant.policies.fallback import FallbackLadderPolicy

    return FallbackLadderPolicy.build(ctx, settings)


def default_registry() -> dict[str, PolicyFactory]:
    return {
        "RulePolicy": _rule_policy,
        "MemoizationPolicy": _memoization_policy,
        "KnowledgePolicy": _knowledge_policy,
        "FallbackLadderPolicy": _fallback_policy,
    }


# the registry config names are looked up in; other packages add their policies here (e.g. "FormPolicy")
POLICIES: dict[str, PolicyFactory] = default_registry()
# always part of the engine when registered; config.yml may list them to change their settings. FormPolicy is
# here because a Rasa config never lists it (Rasa runs forms inside RulePolicy)
IMPLICIT_POLICIES = ("FormPolicy", "KnowledgePolicy", "FallbackLadderPolicy")


@dataclass(frozen=True)
class PolicySpec:
    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)


def _spec(item: Any) -> PolicySpec:
    # accepts assistant.config.PolicyConfig (pydantic, extra keys allowed), plain dicts and PolicySpec
    if isinstance(item, PolicySpec):
        return item
    data = dict(item) if isinstance(item, Mapping) else item.model_dump()
    name = str(data.pop("name"))
    return PolicySpec(name, data)


def build_policies(
    configs: Iterable[Any],
    ctx: PolicyBuildContext,
    registry: Mapping[str, PolicyFactory] | None = None,
    strict: bool = False,
) -> tuple[list[Policy], list[str]]:
    """Policies from ``config.yml`` entries, plus warnings naming what is not supported.

    An unknown name is always an error; a known Rasa policy we do not implement is a warning (an error when
    ``strict``) so a Rasa project still runs with the rest of its policies.
    """
    registry = POLICIES if registry is None else registry
    specs = [_spec(c) for c in configs]
    names = {s.name for s in specs}
    specs += [PolicySpec(n) for n in IMPLICIT_POLICIES if n not in names and n in registry]
    policies: list[Policy] = []
    warnings: list[str] = []
    for spec in specs:
        if spec.name in UNSUPPORTED_POLICIES and spec.name not in registry:
            msg = (
                f"policy {spec.name} ({UNSUPPORTED_POLICIES[spec.name]}) is not supported and is not used / "
                f"不支持策略 {spec.name}，已忽略"
            )
            if strict:
                raise PolicyError(msg)
            log.warning(msg)
            warnings.append(msg)
            continue
        factory = registry.get(spec.name)
        if factory is None:
            raise PolicyError(
                f"unknown policy {spec.name!r} in config.yml / 未知策略 (known: {', '.join(sorted(registry))})"
            )
        policies.append(factory(ctx, spec.settings))
    return policies, warnings


def check_settings(policy: str, settings: Mapping[str, Any], known: Sequence[str]) -> None:
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise PolicyError(f"{policy}: unknown setting(s) {', '.join(unknown)} / 未知的策略参数")


def just_rejected(tracker: Tracker) -> set[str]:
    """Actions that refused to run since the latest action executed (a loop rejecting a digression): they
    must not be predicted again straight away, as in Rasa."""
    out: set[str] = set()
    for e in reversed(tracker.events):
        if isinstance(e, (UserUttered, ActionExecuted)):
            break
        if isinstance(e, ActionExecutionRejected):
            out.add(e.action_name)
    return out


class PolicyEnsemble:
    """Asks policies by descending priority; the first prediction of an action that has not just been rejected
    wins. With no prediction: fall back after a user message, resume an interrupted loop, else listen."""

    def __init__(self, policies: Iterable[Policy], warnings: Iterable[str] = ()) -> None:
        # stable sort: equal priorities keep config order
        self.policies: list[Policy] = sorted(policies, key=lambda p: -p.priority)
        self.warnings = tuple(warnings)

    def add(self, policy: Policy) -> None:
        self.policies = sorted([*self.policies, policy], key=lambda p: -p.priority)

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction:
        if tracker.followup_action:
            return Prediction(tracker.followup_action, 1.0, "followup_action")
        rejected = just_rejected(tracker)
        for policy in self.policies:
            prediction = policy.predict(tracker, domain)
            if prediction is not None and prediction.action not in rejected:
                return prediction
        return self._default(tracker, rejected)

    @staticmethod
    def _default(tracker: Tracker, rejected: set[str]) -> Prediction:
        """Rasa's ensemble ends in fallback or listen; a digression answered mid-form returns to the form."""
        latest = tracker.latest_action_name
        if latest == ACTION_LISTEN:
            return Prediction(ACTION_DEFAULT_FALLBACK, 1.0, "ensemble")
        loop = tracker.active_loop
        if loop and latest != loop and loop not in rejected:
            # a digression has been answered: back to the form, which asks its requested slot again
            return Prediction(loop, 1.0, "ensemble")
        return Prediction(ACTION_LISTEN, 1.0, "ensemble")
