"""The pieces of the form loop on their own: field specs, validators, masking, control phrases, the policy."""

from __future__ import annotations

from datetime import date

import pytest
from form_harness import load_domain

from assistant.calendar import load_holiday_calendar
from assistant.domain import Domain, DomainError
from assistant.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from assistant.forms.control import Control, detect, is_digression, modify_target
from assistant.forms.masking import display, summary
from assistant.forms.policy import FormPolicy
from assistant.forms.spec import form_spec
from assistant.forms.validators import match_value, validate
from assistant.tracker import Tracker

CAL = load_holiday_calendar()
TODAY = date(2026, 11, 27)  # a Friday
DOMAIN = load_domain()
FORM = form_spec(DOMAIN, "id_card_appointment")


def field(slot: str):  # noqa: ANN201
    f = FORM.field(slot)
    assert f is not None
    return f


def check(slot: str, raw: object, info: dict[str, object] | None = None):  # noqa: ANN201
    return validate(field(slot), raw, today=TODAY, calendar=CAL, info=info)


def test_kinds_are_inferred_from_mappings_and_slot_types() -> None:
    kinds = {f.slot: f.kind for f in FORM.fields}
    assert kinds == {
        "applicant_name": "name",
        "id_number": "id_number",
        "phone": "phone",
        "appointment_date": "working_day",
        "district": "lookup",
        "service_type": "choice",
        "remark": "text",
    }
    assert field("remark").optional and not field("phone").optional
    assert FORM.title == "身份证换领预约" and FORM.trigger_intents == ("id_card_renewal",)


def test_spec_errors_name_the_form_and_key() -> None:
    data = {
        "slots": {"a": {"type": "text", "mappings": [{"type": "from_text"}]}},
        "forms": {"f": {"required_slots": ["a"], "colour": "red"}},
    }
    with pytest.raises(DomainError, match="forms.f: unknown key"):
        form_spec(Domain.from_dict(data), "f")
    data["forms"]["f"] = {"required_slots": ["a"], "fields": {"a": {"kind": "telepathy"}}}
    with pytest.raises(DomainError, match="forms.f.fields.a.kind"):
        form_spec(Domain.from_dict(data), "f")
    data["forms"]["f"] = {"required_slots": ["a"], "optional_slots": ["b"]}
    with pytest.raises(DomainError, match="'b' is not in required_slots"):
        form_spec(Domain.from_dict(data), "f")


@pytest.mark.parametrize(
    ("raw", "ok", "value_or_reason"),
    [
        ("110101199003077571", True, "110101199003077571"),
        ("110101 19900307 7571", True, "110101199003077571"),
        ("１１０１０１１９９００３０７７５７１", True, "110101199003077571"),
        ("110101199003077578", False, "身份证号码校验位不正确，请核对后重新输入"),
        ("11010119900307757", False, "应为18位"),
        ("990101199003077571", False, "地区码不正确"),
        ("130503670401001", True, "130503196704010016"),  # a valid old 15-digit number, upgraded
    ],
)
def test_id_number(raw: str, ok: bool, value_or_reason: str) -> None:
    verdict = check("id_number", raw)
    assert verdict.ok is ok
    if ok:
        assert verdict.value == value_or_reason
    else:
        assert value_or_reason in verdict.message and "/" in verdict.message  # bilingual


@pytest.mark.parametrize(
    ("raw", "ok", "value_or_reason"),
    [
        ("13912345678", True, "13912345678"),
        ("+86 139-1234-5678", True, "13912345678"),
        ("010-12345678", True, "010-12345678"),
        ("1391234567", False, "手机号码应为11位"),
        ("12345", False, "服务热线"),
    ],
)
def test_phone(raw: str, ok: bool, value_or_reason: str) -> None:
    verdict = check("phone", raw)
    assert verdict.ok is ok
    assert (verdict.value if ok else verdict.message).__contains__(value_or_reason)


@pytest.mark.parametrize(
    ("raw", "ok", "reason", "suggestion"),
    [
        ("2026-11-30T09:00:00+08:00", True, None, None),
        ("2026-11-28", False, "周末", "2026-11-30"),
        ("2026-11-27", False, "今天", "2026-11-30"),
        ("2026-11-01", False, "过去的日期", "2026-11-30"),
        ("2027-01-01", False, "元旦假期", "2027-01-04"),
        ("2027-06-01", False, "90天以内", None),
        ("随便哪天", False, "没有听懂这个日期", None),
    ],
)
def test_working_day(raw: str, ok: bool, reason: str | None, suggestion: str | None) -> None:
    verdict = check("appointment_date", raw)
    assert verdict.ok is ok
    if reason:
        assert reason in verdict.message
    if suggestion:
        assert verdict.suggestions == (suggestion,)


def test_working_day_span_offers_its_first_bookable_day() -> None:
    # "下周" resolves to Monday with a week grain: ask for a day, offer the first working one
    verdict = check("appointment_date", "2026-11-30T00:00:00+08:00", {"grain": "week"})
    assert not verdict.ok and verdict.suggestions == ("2026-11-30",)


def test_make_up_working_day_is_bookable() -> None:
    # Saturday 2026-02-28 is a 调休 working day after the Spring Festival
    f = field("appointment_date")
    verdict = validate(f, "2026-02-28", today=date(2026, 2, 20), calendar=CAL)
    assert verdict.ok and verdict.value == "2026-02-28"


@pytest.mark.parametrize(
    ("slot", "raw", "value"),
    [
        ("district", "云湖区", "云湖区"),
        ("district", "雲湖區", "云湖区"),
        ("district", "临江", "临江区"),
        ("district", "就在高新区办吧", "高新区"),
        ("district", '/inform{"district":"青川区"}', "青川区"),
        ("district", "青山区", None),
        ("service_type", "补办", "补领"),
        ("service_type", "身份证到期换领", "换领"),
        ("service_type", "第一次办", "首次申领"),
        ("service_type", "ＨＵＡＮ", None),
    ],
)
def test_lookup_and_choice(slot: str, raw: str, value: str | None) -> None:
    assert match_value(field(slot), raw) == value


def test_name_and_text() -> None:
    assert check("applicant_name", "我叫 欧阳娜娜").value == "欧阳娜娜"
    assert check("applicant_name", "阿卜杜·热合曼").ok
    assert not check("applicant_name", "我不知道要填什么东西哈哈哈哈哈哈").ok


@pytest.mark.parametrize("raw", ["朝阳区", "临江区", "云州市", "高新区政务服务中心", "身份证过期了", "下周三上午", "怎么办理", "转人工"])
def test_places_services_and_questions_are_not_names(raw: str) -> None:
    verdict = check("applicant_name", raw)
    assert not verdict.ok and "不是人名" in verdict.error_zh


@pytest.mark.parametrize("raw", ["张三", "区小明", "周三", "王市", "司马懿", "买买提·艾力", "John Smith", "李中心"])
def test_names_that_share_characters_with_places_or_days_still_pass(raw: str) -> None:
    assert check("applicant_name", raw).ok
    assert check("remark", "  需要 轮椅 ").value == "需要 轮椅"


def test_display_masks_id_and_phone_and_spells_dates() -> None:
    assert display(field("id_number"), "110101199003071234") == "1101**********1234"
    assert display(field("phone"), "13912345678") == "139****5678"
    assert display(field("appointment_date"), "2026-12-01") == "2026年12月1日（周二）"
    text = summary(FORM, {"id_number": "110101199003077571", "phone": "13912345678"})
    assert "110101199003077571" not in text and "13912345678" not in text
    assert "备注：（未填写）" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("不办了", {Control.CANCEL}),
        ("算了，取消吧", {Control.CANCEL}),
        ("等一下，我先去找下证件", {Control.PAUSE}),
        ("稍等", {Control.PAUSE}),
        ("继续", {Control.RESUME}),
        ("跳过", {Control.SKIP}),
        ("这个不填", {Control.SKIP}),
        ("没有", {Control.SKIP}),
        ("確認", {Control.AFFIRM}),
        ("好的", {Control.AFFIRM}),
        ("不取消", {Control.DENY}),
        ("重新提交", {Control.RETRY}),
        ("我叫张三", set()),
    ],
)
def test_control_phrases(text: str, expected: set[Control]) -> None:
    assert detect(text) == expected


def test_control_from_a_confident_intent() -> None:
    assert detect("no way", "cancel", 0.9) == {Control.CANCEL}
    assert detect("no way", "cancel", 0.2) == set()


@pytest.mark.parametrize(
    ("text", "slot"),
    [
        ("修改电话", "phone"),
        ("电话写错了", "phone"),
        ("手机号填错了", "phone"),
        ("把身份证号改一下", "id_number"),
        ("日期改成下周三", "appointment_date"),
        ("修改业务类型", "service_type"),
        ("电话是13912345678", None),
    ],
)
def test_modify_target(text: str, slot: str | None) -> None:
    target = modify_target(text, FORM)
    assert (target.slot if target else None) == slot


def _tracker(*events: object) -> Tracker:
    return Tracker("c", (), DOMAIN.slot_defaults).with_events(events)  # type: ignore[arg-type]


def test_policy_handles_active_form_triggers_and_resumes() -> None:
    policy = FormPolicy({name: form_spec(DOMAIN, name) for name in DOMAIN.forms})
    user = UserUttered("x", {"intent": {"name": "inform", "confidence": 0.9}})
    listen = ActionExecuted("action_listen")
    active = _tracker(ActiveLoop("id_card_appointment"), listen, user)
    assert policy.predict(active, DOMAIN).action == "id_card_appointment"
    asked = active.with_events([ActionExecuted("id_card_appointment")])
    assert policy.predict(asked, DOMAIN).action == "action_listen"
    answered = active.with_events([ActionExecuted("action_knowledge_answer")])
    assert policy.predict(answered, DOMAIN).action == "id_card_appointment"
    trigger = _tracker(
        listen, UserUttered("/residence_permit", {"intent": {"name": "residence_permit", "confidence": 1.0}})
    )
    assert policy.predict(trigger, DOMAIN).action == "residence_permit_application"

    paused = _tracker(SlotSet("paused_form", "id_card_appointment"), listen, UserUttered("继续吧", {}))
    assert policy.predict(paused, DOMAIN).action == "id_card_appointment"
    assert policy.predict(_tracker(listen, UserUttered("你好", {})), DOMAIN) is None


@pytest.mark.parametrize(
    ("text", "intent", "confidence", "free_text", "expected"),
    [
        ("需要带什么材料？", "inform", 0.9, True, True),
        ("办居住证要多少钱", None, 0.0, True, True),
        ("王小明", "household_registration", 0.95, True, False),  # a free-text answer stays an answer
        ("王小明", "household_registration", 0.95, False, True),
        ("转人工", "request_human", 0.95, True, True),
        ("在吗", "ask_office_hours", 0.85, True, True),
        ("云湖区文昌路66号", "inform", 0.99, True, False),
        ("随便", "chitchat", 0.5, False, False),
        ("你好", "greet", 0.9, True, True),
    ],
)
def test_digression(
    text: str, intent: str | None, confidence: float, free_text: bool, expected: bool
) -> None:
    assert is_digression(text, intent, confidence, free_text=free_text) is expected


def test_ignored_intents_always_leave() -> None:
    assert is_digression("哈哈", "chitchat", 0.1, ("chitchat",), free_text=True)
