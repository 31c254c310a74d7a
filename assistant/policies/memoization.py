"""MemoizationPolicy: stories from ``data/stories.yml`` remembered exactly.

Every story is replayed into events and viewed as moves (``turns.turn_view``), exactly as a live conversation
is; the last ``max_history`` moves (intent or action, entities, featurised slots, active loop) before each bot
action are the key, the action the value. A key that stories disagree on is dropped, as Rasa does. Stories
joined by ``checkpoint``s and ``or:`` steps are expanded first.

A story's opening is also remembered without its "conversation start" marker, so a story may begin in the middle
of a conversation (what Rasa gets from story augmentation): when no full-history key matches, the longest
recent suffix equal to a story opening decides.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant.domain import Domain
from assistant.events import ActionExecuted, ActiveLoop, Event, SlotSet, UserUttered
from assistant.policies import PolicyBuildContext, Prediction, check_settings
from assistant.policies.turns import TurnView, featurised_slots, turn_view
from assistant.rasa_yaml import ActionStep, CheckpointStep, LoopStep, OrStep, SlotStep, Step, Story, UserStep
from assistant.tracker import ACTION_LISTEN, Tracker

log = logging.getLogger(__name__)

_SETTINGS = ("priority", "max_history")
MAX_EXPANSIONS = 2000
START = ("start",)

StateKey = tuple[Any, ...]


def _state(view: TurnView, i: int, domain: Domain) -> StateKey:
    move, after = view.moves[i], view.after[i]
    return (move.kind, move.name, tuple(sorted(move.entities)), featurised_slots(domain, after.slots), after.active_loop)


def history_key(view: TurnView, upto: int, domain: Domain, max_history: int) -> StateKey:
    """The key for predicting the action after ``view.moves[:upto]``."""
    first = max(0, upto - max_history)
    states = tuple(_state(view, i, domain) for i in range(first, upto))
    return (START, *states) if first == 0 else states


def expand_checkpoints(stories: Sequence[Story], limit: int = MAX_EXPANSIONS) -> list[list[Step]]:
    """Whole step lists: stories joined at checkpoints, ``or:`` alternatives multiplied out."""

    def starts(story: Story) -> set[str]:
        names = set()
        for s in story.steps:
            if not isinstance(s, CheckpointStep):
                break
            names.add(s.name)
        return names

    def body(story: Story) -> tuple[list[Step], set[str]]:
        steps = [s for s in story.steps if not isinstance(s, CheckpointStep)]
        ends: set[str] = set()
        for s in reversed(story.steps):
            if not isinstance(s, CheckpointStep):
                break
            ends.add(s.name)
        return steps, ends

    continuations: dict[str, list[Story]] = {}
    for story in stories:
        for name in starts(story):
            continuations.setdefault(name, []).append(story)
    out: list[list[Step]] = []

    def walk(prefix: list[Step], story: Story, depth: int) -> None:
        if len(out) >= limit:
            return
        steps, ends = body(story)
        joined = prefix + steps
        nexts = [c for e in ends for c in continuations.get(e, [])]
        if not nexts or depth > 5:
            out.append(joined)
            return
        for nxt in nexts:
            walk(joined, nxt, depth + 1)

    for story in stories:
        if not starts(story):
            walk([], story, 0)
    expanded = []
    for steps in out:
        options = [list(s.alternatives) if isinstance(s, OrStep) else [s] for s in steps]
        for combo in itertools.product(*options):
            expanded.append(list(combo))
            if len(expanded) >= limit:
                return expanded
    return expanded


def story_events(steps: Iterable[Step]) -> list[Event]:
    """A story as the events a conversation following it would have."""
    events: list[Event] = []
    for step in steps:
        if isinstance(step, UserStep):
            entities = [
                {"entity": e.entity, "value": e.value, **({"role": e.role} if e.role else {}), **({"group": e.group} if e.group else {})}
                for e in step.entities
            ]
            parse = {"intent": {"name": step.intent, "confidence": 1.0}, "entities": entities, "text": step.text}
            events += [ActionExecuted(ACTION_LISTEN), UserUttered(step.text, parse)]
        elif isinstance(step, ActionStep):
            events.append(ActionExecuted(step.name))
        elif isinstance(step, SlotStep):
            # ``- slot_was_set: [name]`` only says "set": any non-empty value featurises the same
            events += [SlotSet(n, v if given else True) for n, v, given in step.slots]
        elif isinstance(step, LoopStep):
            events.append(ActiveLoop(step.name))
    return events


@dataclass(frozen=True)
class Lookup:
    table: Mapping[StateKey, str]
    openings: Mapping[StateKey, str]
    conflicts: int


def build_lookup(stories: Sequence[Story], domain: Domain, max_history: int) -> Lookup:
    table: dict[StateKey, str] = {}
    ambiguous: set[StateKey] = set()
    openings: dict[StateKey, str] = {}
    ambiguous_openings: set[StateKey] = set()
    defaults = domain.slot_defaults

    def learn(key: StateKey, action: str) -> None:
        _add(table, ambiguous, key, action)
        if key and key[0] == START and len(key) > 1:
            _add(openings, ambiguous_openings, key[1:], action)

    for steps in expand_checkpoints(stories):
        events = story_events(steps)
        view = turn_view(Tracker("story", tuple(events), defaults), domain)

        for i, move in enumerate(view.moves):
            if move.kind == "action":
                learn(history_key(view, i, domain, max_history), move.name)
            # after a story's last action, and before each of its user steps, the bot listens
            last = i == len(view.moves) - 1
            if move.kind == "action" and (last or view.moves[i + 1].kind == "user"):
                learn(history_key(view, i + 1, domain, max_history), ACTION_LISTEN)
    for key in ambiguous:
        table.pop(key, None)
    for key in ambiguous_openings:
        openings.pop(key, None)
    return Lookup(table, openings, len(ambiguous))


def _add(table: dict[StateKey, str], ambiguous: set[StateKey], key: StateKey, action: str) -> None:
    existing = table.get(key)
    if existing is not None and existing != action:
        ambiguous.add(key)
    else:
        table[key] = action


class MemoizationPolicy:
    name = "MemoizationPolicy"

    def __init__(self, stories: Sequence[Story], domain: Domain, max_history: int = 5, priority: int = 3) -> None:
        self.priority = priority
        self.max_history = max_history
        self.lookup = build_lookup(stories, domain, max_history)
        if self.lookup.conflicts:
            log.warning("MemoizationPolicy: %d story states predict different actions and are ignored", self.lookup.conflicts)

    @staticmethod
    def build(ctx: PolicyBuildContext, settings: Mapping[str, Any]) -> MemoizationPolicy:
        check_settings("MemoizationPolicy", settings, _SETTINGS)
        return MemoizationPolicy(
            ctx.story_data.stories, ctx.domain, int(settings.get("max_history") or 5), int(settings.get("priority", 3))
        )

    def predict(self, tracker: Tracker, domain: Domain) -> Prediction | None:
        if not self.lookup.table and not self.lookup.openings:
            return None
        view = turn_view(tracker, domain)
        if not view.moves:
            return None
        n = len(view.moves)
        action = self.lookup.table.get(history_key(view, n, domain, self.max_history))
        if action is not None:
            return Prediction(action, 1.0, self.name)
        for length in range(min(n, self.max_history), 0, -1):
            suffix = tuple(_state(view, i, domain) for i in range(n - length, n))
            action = self.lookup.openings.get(suffix)
            if action is not None:
                return Prediction(action, 0.9, self.name)
        return None
