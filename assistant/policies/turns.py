"""A tracker seen as a sequence of moves (user intents and bot actions), each with the state right after it.

Rules and memoization both match against this view, so a story or rule and a live conversation are compared in
exactly one way. ``action_listen`` and session bookkeeping are not moves: rules and stories never name them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from assistant.domain import Domain
from assistant.events import (
    ActionExecuted,
    ActionReverted,
    Event,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from assistant.tracker import ACTION_LISTEN, DialogueState, Tracker, applied_events, apply

SKIPPED_ACTIONS = frozenset({ACTION_LISTEN, "action_session_start"})


@dataclass(frozen=True)
class Move:
    kind: str  # "user" | "action"
    name: str  # intent or action name
    entities: frozenset[str] = frozenset()
    entity_values: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class TurnView:
    moves: tuple[Move, ...]
    # after[i]: the state once moves[i] and the events it caused were applied; ``before`` precedes moves[0]
    after: tuple[DialogueState, ...]
    before: DialogueState

    def state_before(self, index: int) -> DialogueState:
        return self.before if index == 0 else self.after[index - 1]


def _user_move(event: UserUttered, domain: Domain) -> Move:
    intent = event.intent_name or ""
    spec = domain.intent(intent)
    pairs = tuple(
        (str(e.get("entity")), e.get("value"))
        for e in event.entities
        if e.get("valid") is not False and spec.uses_entity(str(e.get("entity")))
    )
    return Move("user", intent, frozenset(name for name, _ in pairs), pairs)


# events after which the moves so far no longer count as they were: a view is then recomputed, not extended
_RESETS = (Restarted, SessionStarted, ActionReverted, UserUtteranceReverted)


def turn_view(tracker: Tracker, domain: Domain) -> TurnView:
    """Moves since the latest session start or restart (computed once per tracker, and extended from the
    tracker it grew from when it can be, so a long session does not cost a replay per prediction)."""
    key = ("turn_view", id(domain))
    view = tracker.derived.get(key)
    if view is None:
        base = tracker.inherited.get(key) if tracker.inherited is not None else None
        new = tracker.events[tracker.inherited_len :]
        if base is not None and not any(isinstance(e, _RESETS) for e in new):
            view = _fold(base, new, domain)
        else:
            view = _fold(TurnView((), (), DialogueState.initial(tracker.slot_defaults)),
                         applied_events(tracker.events), domain)
        tracker.derived[key] = view
    return view


def _fold(view: TurnView, events: Iterable[Event], domain: Domain) -> TurnView:
    """``view`` with ``events`` applied after it (none of them a reset or a revert)."""
    moves, after = list(view.moves), list(view.after)
    # the state after everything so far: the last move's (kept current), or ``before`` while there is none
    state = after[-1] if after else view.before
    before: DialogueState | None = view.before if moves else None
    for e in events:
        move: Move | None = None
        if isinstance(e, UserUttered):
            move = _user_move(e, domain)
        elif isinstance(e, ActionExecuted) and e.action_name not in SKIPPED_ACTIONS:
            move = Move("action", e.action_name)
        if move is not None:
            if before is None:
                before = state
            moves.append(move)
        state = apply(state, e)
        if moves:
            if len(after) < len(moves):
                after.append(state)
            else:
                after[-1] = state
    return TurnView(tuple(moves), tuple(after), before if before is not None else state)


def slot_feature(domain: Domain, name: str, value: Any) -> Any:
    """What a slot contributes to a dialogue state, as Rasa featurises it: text/list slots only say whether
    they are set; bool, categorical and float slots say their value; ``any`` slots say nothing."""
    slot = domain.slots.get(name)
    kind = slot.type if slot is not None else "text"
    if kind in ("text", "list"):
        return value is not None and value != []
    if kind == "categorical" and isinstance(value, str):
        return value.lower()
    return value


def featurised_slots(domain: Domain, slots: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    out = []
    for name, slot in domain.slots.items():
        if not slot.influence_conversation or slot.type == "any":
            continue
        feature = slot_feature(domain, name, slots.get(name))
        if feature not in (None, False):
            out.append((name, feature))
    return tuple(sorted(out))
