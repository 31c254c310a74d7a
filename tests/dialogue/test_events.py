from __future__ import annotations

import json

import pytest
from rasa_sdk import Tracker as SdkTracker
from rasa_sdk import events as sdk

from assistant.events import (
    ActionExecuted,
    ActionExecutionRejected,
    ActionReverted,
    ActiveLoop,
    AllSlotsReset,
    BotUttered,
    CustomEvent,
    FollowupAction,
    LoopInterrupted,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
    event_from_dict,
    event_to_dict,
)
from assistant.tracker import Tracker, replay

ALL_EVENTS = [
    UserUttered("我要換身份證ＡＢＣ123", {"intent": {"name": "renew_id_card", "confidence": 0.9}, "entities": []},
                "webchat", "m-1", {"openid": "o1"}, timestamp=1.0),
    BotUttered("请选择", {"buttons": [{"title": "东城区", "payload": "/inform"}], "citations": [{"title": "办事指南"}],
                         "custom": {"k": 1}, "image": "http://x/y.png"}, {"utter_action": "utter_x"}, timestamp=2.0),
    ActionExecuted("utter_greet", "RulePolicy", 1.0, timestamp=3.0),
    SlotSet("phone", "13912345678", timestamp=4.0),
    SlotSet("cities", ["北京", "上海"], timestamp=4.5),
    ActiveLoop("renew_form", timestamp=5.0),
    ActiveLoop(None, timestamp=5.5),
    FollowupAction("utter_goodbye", timestamp=6.0),
    Restarted(timestamp=7.0),
    SessionStarted(timestamp=8.0),
    ActionReverted(timestamp=9.0),
    UserUtteranceReverted(timestamp=10.0),
    AllSlotsReset(timestamp=11.0),
    LoopInterrupted(True, timestamp=12.0),
    ActionExecutionRejected("renew_form", "FormPolicy", 1.0, timestamp=13.0),
    CustomEvent("handoff", {"state": "requested", "agent": None}, timestamp=14.0),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_round_trip_through_json(event):
    d = event_to_dict(event)
    back = event_from_dict(json.loads(json.dumps(d, ensure_ascii=False)))
    assert back == event and back.timestamp == event.timestamp


def test_rasa_json_shape():
    d = event_to_dict(ALL_EVENTS[0])
    assert d["event"] == "user" and d["text"] == "我要換身份證ＡＢＣ123" and d["parse_data"]["intent"]["name"] == "renew_id_card"
    assert event_to_dict(SlotSet("a", 1, timestamp=1.0)) == {"event": "slot", "timestamp": 1.0, "name": "a", "value": 1}
    assert event_to_dict(ActionExecuted("x", timestamp=1.0))["name"] == "x"


def test_accepts_what_rasa_sdk_actions_return():
    returned = [
        sdk.SlotSet("phone", "13912345678"),
        sdk.FollowupAction("utter_goodbye"),
        sdk.ActiveLoop("renew_form"),
        sdk.AllSlotsReset(),
        sdk.Restarted(),
        sdk.BotUttered("你好", {"buttons": []}),
        sdk.ActionExecutionRejected("renew_form"),
        sdk.ConversationPaused(),
        sdk.ReminderScheduled("EXTERNAL_reminder", trigger_date_time=__import__("datetime").datetime(2026, 1, 1)),
    ]
    events = [event_from_dict(d) for d in returned]
    assert events[0] == SlotSet("phone", "13912345678", timestamp=events[0].timestamp)
    assert isinstance(events[1], FollowupAction) and events[1].name == "utter_goodbye"
    assert isinstance(events[2], ActiveLoop) and events[2].name == "renew_form"
    assert isinstance(events[3], AllSlotsReset) and isinstance(events[4], Restarted)
    assert isinstance(events[5], BotUttered) and events[5].text == "你好"
    assert isinstance(events[6], ActionExecutionRejected)
    assert isinstance(events[7], CustomEvent) and events[7].name == "pause"
    assert isinstance(events[8], CustomEvent) and events[8].name == "reminder"
    assert all(isinstance(e.timestamp, float) for e in events)  # sdk sends timestamp None


def test_legacy_form_event_and_bad_input():
    legacy = event_from_dict({"event": "form", "name": "f", "timestamp": 5})
    assert legacy == ActiveLoop("f") and legacy.timestamp == 5.0
    with pytest.raises(ValueError):
        event_from_dict({"text": "no kind"})


def test_replay_folds_state_and_resolves_undo():
    events = [
        SlotSet("a", 1),
        ActiveLoop("renew_form"),
        SlotSet("requested_slot", "phone"),
        ActionExecuted("action_listen"),
        UserUttered("x", {"intent": {"name": "greet"}}),
        SlotSet("b", 2),
        UserUtteranceReverted(),
        ActionExecuted("utter_x"),
        SlotSet("c", 3),
        ActionReverted(),
    ]
    state = replay(events, {"a": None, "b": None, "c": None})
    assert state.slots == {"a": 1, "b": None, "c": None, "requested_slot": "phone"}
    assert state.active_loop == "renew_form"
    assert state.latest_action_name == "action_listen"


def test_restart_and_reset_return_to_defaults():
    t = Tracker("c", (SlotSet("a", 1), ActiveLoop("f")), {"a": "init"})
    assert t.slots["a"] == 1 and t.active_loop == "f"
    t2 = t.with_events([Restarted()])
    assert t2.slots["a"] == "init" and t2.active_loop is None
    assert t.with_events([AllSlotsReset()]).slots["a"] == "init"
    assert t2.events_after_latest_restart() == []


def test_incremental_state_equals_replay():
    t = Tracker("c", (), {"x": None})
    for e in ALL_EVENTS[:9]:
        t = t.with_events([e])
    assert t.state == replay(t.events, {"x": None})


def test_rejection_flag_cleared_when_loop_runs_again():
    t = Tracker("c", (ActiveLoop("f"), ActionExecutionRejected("f")))
    assert t.state.loop_rejected
    assert not t.with_events([ActionExecuted("f")]).state.loop_rejected


def test_to_rasa_json_is_what_rasa_sdk_reads():
    t = Tracker("c-1", tuple(ALL_EVENTS[:8]))
    data = json.loads(json.dumps(t.to_rasa_json(), ensure_ascii=False))
    sdk_tracker = SdkTracker.from_dict(data)
    assert sdk_tracker.sender_id == "c-1"
    assert sdk_tracker.get_slot("phone") == "13912345678"
    assert sdk_tracker.latest_message["intent"]["name"] == "renew_id_card"
    assert sdk_tracker.followup_action == "utter_goodbye"
    assert len(sdk_tracker.events) == 8
    assert set(data) >= {"sender_id", "slots", "latest_message", "events", "paused", "followup_action",
                         "active_loop", "latest_action_name", "latest_input_channel"}


def test_back_rewinds_two_user_messages():
    events = [
        ActionExecuted("action_listen"), UserUttered("a", {"intent": {"name": "greet"}}), ActionExecuted("utter_greet"),
        SlotSet("phone", "139"),
        ActionExecuted("action_listen"), UserUttered("b", {"intent": {"name": "inform"}}), SlotSet("district", "东城区"),
        ActionExecuted("utter_ok"),
        ActionExecuted("action_listen"), UserUttered("/back", {"intent": {"name": "back"}}),
        ActionExecuted("action_back"), UserUtteranceReverted(), UserUtteranceReverted(),
    ]
    state = replay(events, {"phone": None, "district": None})
    assert state.slots["district"] is None and state.slots["phone"] == "139"
    assert state.latest_message["intent"]["name"] == "greet"
