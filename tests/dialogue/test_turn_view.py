"""The policies' turn view is extended from the tracker a tracker grew from rather than recomputed over the whole
conversation; whatever the events, the extended view must equal the one computed from scratch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.domain import Domain
from assistant.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from assistant.policies.turns import turn_view
from assistant.tracker import ACTION_LISTEN, Tracker

DOMAIN = Domain.from_dict(
    {
        "intents": ["greet", "inform", "request_human"],
        "entities": ["phone", "district"],
        "slots": {"phone": {"type": "text", "mappings": [{"type": "from_entity", "entity": "phone"}]},
                  "done": {"type": "bool", "mappings": [{"type": "custom"}]}},
        "actions": ["action_a", "action_b"],
    }
)


def user(intent: str, entity: str | None) -> UserUttered:
    entities = [{"entity": entity, "value": "x", "start": 0, "end": 1}] if entity else []
    return UserUttered("…", {"intent": {"name": intent, "confidence": 0.9}, "entities": entities})


EVENTS = st.one_of(
    st.builds(user, st.sampled_from(["greet", "inform", "request_human"]), st.sampled_from([None, "phone", "district"])),
    st.builds(ActionExecuted, st.sampled_from(["action_a", "action_b", ACTION_LISTEN, "action_session_start"])),
    st.builds(SlotSet, st.sampled_from(["phone", "done"]), st.sampled_from([None, "139", True])),
    st.builds(ActiveLoop, st.sampled_from([None, "some_form"])),
    st.sampled_from([Restarted(), SessionStarted(), ActionReverted(), UserUtteranceReverted()]),
)


def views_agree(tracker: Tracker) -> None:
    fresh = Tracker(tracker.conversation_id, tracker.events, tracker.slot_defaults)
    assert turn_view(tracker, DOMAIN) == turn_view(fresh, DOMAIN)


@given(st.lists(st.lists(EVENTS, max_size=6), max_size=25), st.lists(st.booleans(), min_size=25, max_size=25))
@settings(max_examples=300, deadline=None)
def test_an_extended_view_equals_one_computed_from_scratch(batches: list[list[Event]], look: list[bool]) -> None:
    tracker = Tracker("c", (), DOMAIN.slot_defaults)
    for batch, looked in zip(batches, look, strict=False):
        tracker = tracker.with_events(batch)
        if looked:  # a prediction on this tracker: its view is what the next trackers extend
            views_agree(tracker)
    views_agree(tracker)


def test_a_long_session_is_extended_not_replayed() -> None:
    tracker = Tracker("c", (), DOMAIN.slot_defaults).with_events([SessionStarted()])
    for _ in range(200):
        tracker = tracker.with_events([user("greet", None), ActionExecuted("action_a"), ActionExecuted(ACTION_LISTEN)])
        turn_view(tracker, DOMAIN)
    grown = tracker.with_events([user("inform", "phone")])
    # the memo it grew from covers everything but the new message
    assert grown.inherited is not None and grown.inherited_len == len(grown.events) - 1
    view = turn_view(grown, DOMAIN)
    assert len(view.moves) == 401 and view.moves[-1].name == "inform"
