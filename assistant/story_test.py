"""Conversation tests: ``tests/test_stories.yml`` (Rasa format) run through the real engine.

Each story is played in its own conversation: a ``user:`` step sends its text (a step with only ``intent:``
sends the ``/intent{...}`` payload), and what the engine did in that turn is compared with the story's
``action:``, ``slot_was_set:`` and ``active_loop:`` steps up to the next user step. Slot and loop steps are
checked against the state just before the story's next action (or at the end of the turn), so it does not
matter whether the NLU mapping or the action that follows set them. A story fails at its first diverging step;
action-level precision/recall/F1 align expected and executed actions turn by turn.
"""

from __future__ import annotations

import difflib
import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.agent import Agent, UserMessage
from assistant.events import ActionExecuted, UserUttered
from assistant.rasa_yaml import ActionStep, LoopStep, OrStep, SlotStep, Story, UserStep
from assistant.tracker import ACTION_LISTEN, DialogueState, Tracker, apply

_NOT_ACTIONS = {ACTION_LISTEN, "action_session_start"}


@dataclass(frozen=True)
class Divergence:
    step: int  # 1-based index in the story's steps
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"step {self.step}: expected {self.expected}, got {self.actual}"


@dataclass(frozen=True)
class StoryResult:
    story: str
    source: str
    divergence: Divergence | None
    expected_actions: tuple[str, ...]
    actual_actions: tuple[str, ...]
    intents: tuple[tuple[str, str], ...]  # (expected, predicted)

    @property
    def passed(self) -> bool:
        return self.divergence is None


@dataclass(frozen=True)
class ActionScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class TestReport:
    results: tuple[StoryResult, ...]
    per_action: dict[str, ActionScores] = field(default_factory=dict)
    overall: ActionScores = ActionScores(0.0, 0.0, 0.0, 0)

    @property
    def failed(self) -> list[StoryResult]:
        return [r for r in self.results if not r.passed]

    @property
    def story_accuracy(self) -> float:
        return (len(self.results) - len(self.failed)) / len(self.results) if self.results else 1.0

    @property
    def intent_accuracy(self) -> float:
        pairs = [p for r in self.results for p in r.intents]
        return sum(e == a for e, a in pairs) / len(pairs) if pairs else 1.0


def _payload(step: UserStep) -> str:
    entities = {e.entity: e.value for e in step.entities}
    return f"/{step.intent}{json.dumps(entities, ensure_ascii=False) if entities else ''}"


@dataclass
class _Turn:
    """What the engine did after one user message: executed actions, each with the state just before it."""

    actions: list[str]
    states_before: list[DialogueState]
    end_state: DialogueState
    intent: str | None
    entities: list[dict[str, Any]]


def _turn(before: Tracker, after: Tracker) -> _Turn:
    new = after.events[len(before.events):]
    state = before.state
    actions: list[str] = []
    states: list[DialogueState] = []
    user: UserUttered | None = None
    for e in new:
        if isinstance(e, ActionExecuted) and e.action_name not in _NOT_ACTIONS:
            actions.append(e.action_name)
            states.append(state)
        if isinstance(e, UserUttered):
            user = e
        state = apply(state, e)
    return _Turn(actions, states, after.state, user.intent_name if user else None, user.entities if user else [])


def _slot_matches(state: DialogueState, name: str, value: Any, given: bool) -> bool:
    current = state.slots.get(name)
    return current is not None if not given else current == value


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _check_turn(steps: Sequence[tuple[int, Any]], turn: _Turn) -> Divergence | None:
    """Compare one turn's expected steps (with their story index) against what ran."""
    cursor = 0  # index of the next executed action to match
    for index, step in steps:
        if isinstance(step, ActionStep):
            actual = turn.actions[cursor] if cursor < len(turn.actions) else "action_listen (nothing more)"
            if actual != step.name:
                return Divergence(index, f"action {step.name}", f"action {actual}")
            cursor += 1
            continue
        state = turn.states_before[cursor] if cursor < len(turn.states_before) else turn.end_state
        if isinstance(step, SlotStep):
            for name, value, given in step.slots:
                if not _slot_matches(state, name, value, given):
                    want = f"slot {name}={_show(value)}" if given else f"slot {name} set"
                    return Divergence(index, want, f"{name}={_show(state.slots.get(name))}")
        elif isinstance(step, LoopStep) and state.active_loop != step.name:
            return Divergence(index, f"active_loop {step.name}", f"active_loop {state.active_loop}")
    if cursor < len(turn.actions):
        index = steps[-1][0] if steps else 0
        return Divergence(index, "action_listen", f"action {turn.actions[cursor]}")
    return None


def _split_turns(story: Story) -> tuple[list[tuple[int, Any]], list[tuple[int, UserStep, list[tuple[int, Any]]]]]:
    """Steps before the first user message, then each user step with the steps up to the next one."""
    opening: list[tuple[int, Any]] = []
    turns: list[tuple[int, UserStep, list[tuple[int, Any]]]] = []
    for i, step in enumerate(story.steps, start=1):
        if isinstance(step, OrStep):
            step = step.alternatives[0]  # test stories are concrete; ``or`` keeps its first branch
        if isinstance(step, UserStep):
            turns.append((i, step, []))
        elif turns:
            turns[-1][2].append((i, step))
        else:
            opening.append((i, step))
    return opening, turns


async def run_story(agent: Agent, story: Story) -> StoryResult:
    conversation = f"story-test-{uuid.uuid4().hex}"
    opening, turns = _split_turns(story)
    divergence: Divergence | None = None
    expected_actions: list[str] = []
    actual_actions: list[str] = []
    intents: list[tuple[str, str]] = []
    if opening:
        divergence = Divergence(opening[0][0], "a user step first", "a bot step before any user message")
    for index, step, rest in turns:
        before = await agent.tracker(conversation)
        text = step.text if step.text is not None else _payload(step)
        await agent.handle(UserMessage(conversation, text, channel="test"))
        turn = _turn(before, await agent.tracker(conversation))
        expected = [s.name for _, s in rest if isinstance(s, ActionStep)]
        expected_actions += expected
        actual_actions += turn.actions
        intents.append((step.intent or "", turn.intent or ""))
        if divergence is not None:
            continue
        if step.intent and turn.intent != step.intent:
            divergence = Divergence(index, f"intent {step.intent} for {text!r}", f"intent {turn.intent}")
            continue
        for e in step.entities:
            found = [x for x in turn.entities if x.get("entity") == e.entity and (e.role is None or x.get("role") == e.role)]
            if not found or (e.value is not None and all(x.get("value") != e.value for x in found)):
                got = ", ".join(f"{x.get('entity')}={_show(x.get('value'))}" for x in turn.entities) or "no entities"
                divergence = Divergence(index, f"entity {e.entity}={_show(e.value)}", got)
                break
        if divergence is None:
            divergence = _check_turn(rest, turn)
    return StoryResult(story.name, story.source, divergence, tuple(expected_actions), tuple(actual_actions),
                       tuple(intents))


def score_actions(results: Sequence[StoryResult]) -> tuple[dict[str, ActionScores], ActionScores]:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for r in results:
        matcher = difflib.SequenceMatcher(a=r.expected_actions, b=r.actual_actions, autojunk=False)
        matched_expected: set[int] = set()
        matched_actual: set[int] = set()
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                matched_expected.add(block.a + k)
                matched_actual.add(block.b + k)
                tp[r.expected_actions[block.a + k]] += 1
        for i, name in enumerate(r.expected_actions):
            if i not in matched_expected:
                fn[name] += 1
        for i, name in enumerate(r.actual_actions):
            if i not in matched_actual:
                fp[name] += 1

    def scores(t: int, p: int, n: int) -> ActionScores:
        precision = t / (t + p) if t + p else 1.0
        recall = t / (t + n) if t + n else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return ActionScores(precision, recall, f1, t + n)

    names = set(tp) | set(fp) | set(fn)
    per_action = {name: scores(tp[name], fp[name], fn[name]) for name in sorted(names)}
    overall = scores(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return per_action, overall


async def run_test_stories(agent: Agent, stories: Sequence[Story]) -> TestReport:
    """Every story in its own conversation, one after the other (the NLU and index are CPU-bound anyway)."""
    results = tuple([await run_story(agent, s) for s in stories])
    per_action, overall = score_actions(results)
    return TestReport(results, per_action, overall)


def format_report(report: TestReport, warnings: Sequence[str] = ()) -> str:
    n = len(report.results)
    passed = n - len(report.failed)
    o = report.overall
    lines = [
        f"Stories / 对话故事: {passed}/{n} passed, accuracy {report.story_accuracy:.1%}",
        f"Actions / 动作: precision {o.precision:.3f}  recall {o.recall:.3f}  F1 {o.f1:.3f}  (expected {o.support})",
        f"Intents / 意图: accuracy {report.intent_accuracy:.1%}",
    ]
    weak = [(name, s) for name, s in report.per_action.items() if s.f1 < 1.0]
    if weak:
        lines.append("Actions below F1 1.0 / 未全对的动作:")
        lines += [f"  {name:<40} P {s.precision:.2f}  R {s.recall:.2f}  F1 {s.f1:.2f}  n={s.support}"
                  for name, s in sorted(weak, key=lambda x: x[1].f1)]
    for r in report.failed:
        lines.append(f"FAILED / 失败: story '{r.story}' ({r.source}) {r.divergence}")
    lines += [f"warning / 警告: {w}" for w in warnings]
    return "\n".join(lines)

