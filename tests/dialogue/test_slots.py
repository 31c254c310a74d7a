from __future__ import annotations

from dialogue_helpers import user

from assistant.domain import Domain
from assistant.events import ActiveLoop, SlotSet
from assistant.slots import coerce, extract_slot_events
from assistant.tracker import Tracker


def extracted(domain: Domain, *events) -> dict:
    tracker = Tracker("c", tuple(e for group in events for e in (group if isinstance(group, list) else [group])),
                      domain.slot_defaults)
    return {e.key: e.value for e in extract_slot_events(domain, tracker)}


def ent(entity: str, value, role=None, group=None, **extra) -> dict:
    out = {"entity": entity, "value": value, "start": 0, "end": 1, **extra}
    if role:
        out["role"] = role
    if group:
        out["group"] = group
    return out


def test_from_entity(domain):
    got = extracted(domain, user("inform", [ent("phone", "13912345678")], "电话是１３９１２３４５６７８"))
    assert got["phone"] == "13912345678"


def test_from_entity_respects_intent_use_and_ignore_entities(domain):
    # inform uses only phone and district; move_house ignores phone
    assert "visited_cities" not in extracted(domain, user("inform", [ent("city", "北京")]))
    assert "phone" not in extracted(domain, user("move_house", [ent("phone", "13912345678")]))


def test_from_entity_with_role(domain):
    got = extracted(domain, user("move_house", [ent("city", "北京", role="from"), ent("city", "上海", role="to")],
                                 "从北京搬到上海"))
    assert got["from_city"] == "北京" and got["to_city"] == "上海"
    # a mapping without a role does not take entities that have one (Rasa semantics)
    assert "visited_cities" not in got


def test_from_entity_with_group(domain):
    got = extracted(domain, user("move_house", [ent("person", "张三", group="2"), ent("person", "李四", group="1")]))
    assert got["first_person"] == "李四"


def test_invalid_entity_does_not_fill(domain):
    got = extracted(domain, user("inform", [ent("phone", "1391234", valid=False, error="too short")]))
    assert "phone" not in got


def test_list_slot_takes_all_values_and_not_intent(domain):
    got = extracted(domain, user("move_house", [ent("city", "北京"), ent("city", "上海")]))
    assert got["visited_cities"] == ["北京", "上海"]
    assert "visited_cities" not in extracted(domain, user("deny", [ent("city", "北京")]))


def test_from_intent_and_condition_on_no_active_loop(domain):
    assert extracted(domain, user("request_human"))["wants_human"] is True
    assert extracted(domain, user("deny"))["wants_human"] is False
    # condition ``active_loop: null``: not while a form is active
    assert "wants_human" not in extracted(domain, ActiveLoop("renew_form"), user("deny"))


def test_from_text_only_for_requested_slot_of_active_form(domain):
    text = "請幫我備註：下午3點後再聯系 thanks"
    assert "note" not in extracted(domain, user("inform", text=text))
    assert "note" not in extracted(domain, ActiveLoop("renew_form"), SlotSet("requested_slot", "phone"),
                                   user("inform", text=text))
    got = extracted(domain, ActiveLoop("renew_form"), SlotSet("requested_slot", "note"), user("inform", text=text))
    assert got["note"] == text


def test_from_trigger_intent_fills_only_when_activating_the_form(domain):
    assert extracted(domain, user("renew_id_card"))["urgent"] is True
    assert "urgent" not in extracted(domain, ActiveLoop("renew_form"), user("renew_id_card"))
    assert "urgent" not in extracted(domain, user("greet"))


def test_custom_mapping_is_left_to_actions(domain):
    assert "fee" not in extracted(domain, user("inform", [ent("fee", 3)]))


def test_context_slot_from_intent_and_entity(domain):
    assert extracted(domain, user("renew_id_card"))["current_service"] == "身份证换领"
    assert extracted(domain, user("ask_materials", [ent("service", "社保卡挂失")]))["current_service"] == "社保卡挂失"


def test_unchanged_value_is_not_set_again(domain):
    assert "phone" not in extracted(domain, SlotSet("phone", "13912345678"), user("inform", [ent("phone", "13912345678")]))


def test_categorical_coercion_and_categorical_mapping(domain):
    assert extracted(domain, user("inform", [ent("district", "东城区")]))["district"] == "东城区"
    slot = domain.slots["district"]
    assert coerce(slot, "东城区") == "东城区"
    assert coerce(slot, "海淀区") == "海淀区"  # kept so a validator can say why it is not accepted


def test_entity_shared_by_two_form_slots_fills_only_the_requested_one():
    domain = Domain.from_dict({
        "intents": ["inform"],
        "entities": ["date"],
        "slots": {
            "start": {"type": "text", "mappings": [{"type": "from_entity", "entity": "date"}]},
            "end": {"type": "text", "mappings": [{"type": "from_entity", "entity": "date"}]},
        },
        "forms": {"trip_form": {"required_slots": ["start", "end"]}},
    })
    got = extracted(domain, ActiveLoop("trip_form"), SlotSet("requested_slot", "end"), user("inform", [ent("date", "明天")]))
    assert got == {"end": "明天"}
    # outside the form both mappings apply
    assert extracted(domain, user("inform", [ent("date", "明天")])) == {"start": "明天", "end": "明天"}


def test_coercion_per_type():
    d = Domain.from_dict({"slots": {
        "b": {"type": "bool"}, "f": {"type": "float"}, "t": {"type": "text"}, "l": {"type": "list"}, "a": {"type": "any"},
    }})
    assert coerce(d.slots["b"], "是") is True and coerce(d.slots["b"], "不需要") is False
    assert coerce(d.slots["f"], "3.5") == 3.5 and coerce(d.slots["f"], "三") == "三"
    assert coerce(d.slots["t"], 12) == "12"
    assert coerce(d.slots["l"], "x") == ["x"]
    assert coerce(d.slots["a"], {"k": 1}) == {"k": 1}
