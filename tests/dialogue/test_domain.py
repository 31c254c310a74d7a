from __future__ import annotations

from pathlib import Path

import pytest

from assistant.domain import Button, Domain, DomainError
from assistant.nlg import MISSING_VALUE, NLG, fill


def test_fixture_domain_loads(domain):
    assert "renew_id_card" in domain.intents
    assert domain.intents["inform"].use_entities == ("phone", "district")
    assert not domain.intents["move_house"].uses_entity("phone")
    assert domain.entities["city"].roles == ("from", "to")
    assert domain.slots["district"].values == ("东城区", "西城区", "朝阳区")
    note = domain.slots["note"].mappings[0]
    assert note.type == "from_text" and note.conditions[0].requested_slot == "note"
    assert domain.forms["renew_form"].required_slots == ("phone", "district", "note")
    assert domain.session_config.session_expiration_time == 60
    assert "action_check_status" in domain.action_names and "renew_form" in domain.action_names
    assert domain.slot_defaults["requested_slot"] is None
    assert domain.responses["utter_district"][0].buttons[0] == Button("东城区", '/inform{"district": "东城区"}')


def test_directory_is_merged_like_rasa(tmp_path: Path):
    (tmp_path / "a.yml").write_text("intents: [greet]\nresponses:\n  utter_greet: [{text: hi}]\n", encoding="utf-8")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.yml").write_text(
        "intents: [greet, bye]\nslots:\n  s: {type: text, mappings: [{type: from_text}]}\n"
        "responses:\n  utter_bye: [{text: 再见}]\nsession_config: {session_expiration_time: 5}\n",
        encoding="utf-8",
    )
    d = Domain.load(tmp_path)
    assert list(d.intents) == ["greet", "bye"]
    assert set(d.responses) == {"utter_greet", "utter_bye"}
    assert "s" in d.slots and d.session_config.session_expiration_time == 5


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("intnets: [greet]", "unknown key 'intnets'"),
        ("slots:\n  s: {type: money}", "unsupported slot type 'money'"),
        ("slots:\n  s: {type: text, mappings: [{type: from_llm}]}", "unsupported mapping type 'from_llm'"),
        ("slots:\n  s: {type: text, mappings: [{type: from_entity}]}", "from_entity needs 'entity'"),
        ("slots:\n  s: {type: categorical}", "categorical slot needs values"),
        ("forms:\n  f: {required_slots: [nope]}", "required slot 'nope' is not declared"),
        ("slots:\n  s: {type: text}\nforms:\n  f: {required_slots: {s: [{type: from_text}]}}", "Rasa 2 mapping syntax"),
        ("responses:\n  utter_x: []", "needs a list of variations"),
        ("intents: [greet\n", "not valid YAML"),
    ],
)
def test_invalid_content_names_file_and_reason(tmp_path: Path, content: str, reason: str):
    path = tmp_path / "domain.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DomainError) as err:
        Domain.load(path)
    assert str(path) in str(err.value)
    assert reason in str(err.value)


def test_unsupported_features_are_reported_by_name():
    d = Domain.from_dict(
        {"e2e_actions": ["你好"], "responses": {"utter_x": [{"text": "a", "elements": []}]},
         "slots": {"s": {"type": "text", "auto_fill": False}}}
    )
    joined = "\n".join(d.warnings)
    assert "e2e_actions" in joined and "elements" in joined and "auto_fill" in joined


# --- NLG ----------------------------------------------------------------------------------------------------


def test_variations_are_random_but_seedable(domain):
    a = [NLG(domain, seed=7).generate("utter_greet", {}).text for _ in range(1)]
    first = NLG(domain, seed=7)
    second = NLG(domain, seed=7)
    seq1 = [first.generate("utter_greet", {}).text for _ in range(20)]
    seq2 = [second.generate("utter_greet", {}).text for _ in range(20)]
    assert seq1 == seq2 and a[0] == seq1[0]
    assert set(seq1) == {"您好！", "你好，很高兴为您服务。"}


def test_conditional_response_wins_when_its_condition_holds(domain):
    nlg = NLG(domain, seed=1)
    assert nlg.generate("utter_phone_known", {"wants_human": True, "phone": "139****5678"}).text == (
        "好的，人工客服会打给 139****5678。"
    )
    assert nlg.generate("utter_phone_known", {"wants_human": False, "phone": "139****5678"}).text == (
        "我们会短信通知 139****5678。"
    )


def test_channel_specific_variation(domain):
    nlg = NLG(domain)
    assert nlg.generate("utter_web_only", {}, channel="webchat").text == "网页专用"
    assert nlg.generate("utter_web_only", {}, channel="wechat").text == "通用回复"
    assert nlg.generate("utter_web_only", {}).text == "通用回复"


def test_buttons_and_placeholders(domain):
    message = NLG(domain).generate("utter_district", {})
    assert [b.title for b in message.buttons] == ["东城区", "西城区"]
    assert message.event_data()["buttons"][1]["payload"] == '/inform{"district": "西城区"}'


def test_missing_placeholder_is_readable_never_a_crash(domain):
    nlg = NLG(domain)
    assert nlg.generate("utter_greet_named", {}).text == f"您好，{MISSING_VALUE}！"
    assert nlg.generate("utter_greet_named", {"name": None}).text == f"您好，{MISSING_VALUE}！"
    assert nlg.generate("utter_greet_named", {}, name="张三").text == "您好，张三！"
    assert nlg.generate("utter_nothing", {}) is None
    # JSON in a template is not a placeholder
    assert fill('/inform{"district": "东城区"} {a}', {"a": ["北京", "上海"]}) == '/inform{"district": "东城区"} 北京、上海'
