"""RulePolicy: rules from ``data/rules.yml``.

A rule matches when its first *j* steps equal the conversation's last *j* moves (user intents and bot actions;
``slot_was_set``/``active_loop`` steps check the state after the preceding move, ``condition`` checks the state
before the first). It then predicts its step *j*, or ``action_listen`` once all its steps have happened (unless
``wait_for_user_input: false``). The longest match wins. ``conversation_start`` rules only match from the
first move of a session. Rasa's default rules (``/restart``, ``/back``) are built in.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.domain import Domain
from assistant.policies import PolicyBuildContext, Prediction, check_settings
from assistant.policies.turns import Move, TurnView, slot_feature, turn_view
from assistant.rasa_yaml import ActionStep, LoopStep, OrStep, Rule, SlotStep, Step, UserStep
from assistant.tracker import ACTION_LISTEN, REQUESTED_SLOT, DialogueState, Tracker

_SETTINGS = (
    "priority",
    "core_fallback_threshold",
    "core_fallback_action_name",
    "enable_fallback_prediction",
    "restrict_rules",
    "check_for_contradictions",
)


@dataclass(frozen=True)
class SlotCheck:
    name: str
    value: Any
    value_given: bool

    def holds(self, state: DialogueState, domain: Domain) -> bool:
        current = state.slots.get(self.name)
        if not self.value_given:
            return current is not None
        if self.name == REQUESTED_SLOT or self.value is None:
            return current == self.value
        return slot_feature(domain, self.name, current) == slot_feature(domain, self.name, self.value)


@dataclass(frozen=True)
class LoopCheck:
    name: str | None

    def holds(self, state: DialogueState, domain: Domain) -> bool:
        return state.active_loop == self.name


Check = SlotCheck | LoopCheck


@dataclass(frozen=True)
class RuleMove:
    kind: str
    name: str
    entities: tuple[tuple[str, Any], ...] = ()  # (name, value or None for "any value")
    checks: tuple[Check, ...] = ()

    def matches(self, move: Move) -> bool:
        if move.kind != self.kind or move.name != self.name:
            return False
        for name, value in self.entities:
            if name not in move.entities:
                return False
            if value is not None and (name, value) not in move.entity_values:
                return False
        return True


@dataclass(frozen=True)
class CompiledRule:
    name: str
    moves: tuple[RuleMove, ...]
    condition: tuple[Check, ...] = ()
    conversation_start: bool = False
    wait_for_user_input: bool = True


def _checks(step: Step) -> list[Check]:
    if isinstance(step, SlotStep):
        return [SlotCheck(n, v, given) for n, v, given in step.slots]
    if isinstance(step, LoopStep):
        return [LoopCheck(step.name)]
    return []


def _expand_or(steps: Sequence[Step]) -> list[list[Step]]:
    options = [list(s.alternatives) if isinstance(s, OrStep) else [s] for s in steps]
    return [list(combo) for combo in itertools.product(*options)]


def compile_rule(rule: Rule) -> list[CompiledRule]:
    out = []
    condition = tuple(c for step in rule.condition for c in _checks(step))
    for steps in _expand_or(rule.steps):
        moves: list[RuleMove] = []
        leading: list[Check] = []
        for step in steps:
            if isinstance(step, UserStep):
                entities = tuple((e.entity, e.value) for e in step.entities)
                moves.append(RuleMove("user", step.intent or "", entities))
            elif isinstance(step, ActionStep):
                moves.append(RuleMove("action", step.name))
            else:
                checks = _checks(step)
                if moves:
                    last = moves[-1]
                    moves[-1] = RuleMove(last.kind, last.name, last.entities, last.checks + tuple(checks))
                else:
                    leading += checks
        out.append(
            CompiledRule(rule.name, tuple(moves), condition + tuple(leading), rule.conversation_start, rule.wait_for_user_input)
        )
    return out


DEFAULT_RULES = (
    CompiledRule("default: restart", (RuleMove("user", "restart"), RuleMove("action", "action_restart"))),
    CompiledRule("default: back", (RuleMove("user", "back"), RuleMove("action", "action_back"))),
)


def _match_length(rule: CompiledRule, view: TurnView, domain: Domain, j: int) -> bool:
    n = len(view.moves)
    start = n - j
    if start < 0 or (rule.conversation_start and start != 0):
        return False
    before = view.state_before(start)
    if not all(c.holds(before, domain) for c in rule.condition):
        return False
    for k in range(j):
        expected, actual = rule.moves[k], view.moves[start + k]
        if not expected.matches(actual):
            return False
        if not all(c.holds(view.after[start + k], domain) for c in expected.checks):
            return False
    return True


@dataclass(frozen=True)
class RuleMatch:
    rule: str
    action: str
    length: int
    specificity: int


def find_matches(rules: Iterable[CompiledRule], view: TurnView, domain: Domain) -> list[RuleMatch]:
    out = []
    for rule in rules:
        m = len(rule.moves)
        for j in range(min(m, len(view.moves)), 0, -1):
            if not _match_length(rule, view, domain, j):
                continue
            specificity = len(rule.condition) + sum(len(x.checks) + len(x.entities) for x in rule.moves[:j])
            if j < m:
                if rule.moves[j].kind == "action":
                    out.append(RuleMatch(rule.name, rule.moves[j].name, j, specificity))
            elif rule.moves[-1].kind == "action" and rule.wait_for_user_input:
                out.append(RuleMatch(rule.name, ACTION_LISTEN, j, specificity))
            break  # the longest match of this rule decides
    return out


class RulePolicy:
    name = "RulePolicy"

    def __init__(self, rules: Iterable[Rule], priority: int = 6, defaults: bool = True) -> None:
        self.priority = priority
        compiled = [c for r in rules for c in compile_rule(r)]
        self.rules: tuple[CompiledRule, ...] = tuple(compiled) + (DEFAULT_RULES if defaults else ())

    @staticmethod
    def build(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> RulePolicy:
        check_settings("RulePolicy", settings, _SETTINGS)
        return RulePolicy(ctx.story_data.rules, int(settings.get("priority", 6)))

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction | None:
        view = turn_view(tracker, domain)
        if not view.moves:
            return None
        matches = find_matches(self.rules, view, domain)
        if not matches:
            return None
        best = max(matches, key=lambda m: (m.length, m.specificity))
        action = best.action
        loop = tracker.active_loop
        if (
            action == ACTION_LISTEN
            and loop
            and tracker.state.loop_rejected
            and tracker.latest_action_name not in (loop, ACTION_LISTEN)
        ):
            # a digression rule has finished inside a form: return to the form (Rasa's unhappy-path return)
            action = loop
        return Prediction(action, 1.0, f"{self.name}:{best.rule}")
