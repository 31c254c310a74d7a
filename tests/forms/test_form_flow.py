"""The form loop end to end through the real agent: NLU, policies, form action, SQLite store, back office."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from form_harness import NOW, Chat, build_agent, sqlite_store

from assistant.events import ActionExecutionRejected, SessionStarted, SlotSet
from assistant.forms.config import FormsConfig, SubmissionConfig
from assistant.forms.submission import UnconfiguredSubmitter
from connectors.backoffice_demo import BackOfficeState, RunningBackOffice, serve_in_thread
from connectors.submission import HttpSubmitter

ID = "110101199003077571"  # valid check digit
ID_BAD = "110101199003077578"  # the check digit should be 1
MASKED_ID = "1101**********7571"


@pytest.fixture()
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread(BackOfficeState(today=lambda: date(2026, 11, 27))) as running:
        yield running


def _chat(tmp_path: Path, backoffice: RunningBackOffice, **config: bool) -> Chat:
    async def no_sleep(_: float) -> None:
        return None

    submitter = HttpSubmitter(SubmissionConfig(url=backoffice.submissions_url, max_retries=1), sleep=no_sleep)
    forms_config = FormsConfig(**config)  # type: ignore[arg-type]
    return Chat(build_agent(sqlite_store(tmp_path / "t.db"), submitter, forms_config=forms_config))


@pytest.fixture()
def chat(tmp_path: Path, backoffice: RunningBackOffice) -> Chat:
    return _chat(tmp_path, backoffice)


def fill_to_confirmation(chat: Chat) -> str:
    chat.say("/id_card_renewal")
    chat.say(f"我叫张三，电话13912345678，身份证{ID}")
    chat.say("下周二")
    chat.say("云湖区")
    chat.say("换领")
    return chat.text("跳过")


def test_start_and_several_fields_in_one_message(chat: Chat) -> None:
    reply = chat.text("/id_card_renewal")
    assert "身份证换领预约" in reply and "姓名" in reply
    reply = chat.text(f"我叫张三，电话13912345678，身份证{ID}")
    slots = chat.slots()
    assert (slots["applicant_name"], slots["phone"], slots["id_number"]) == ("张三", "13912345678", ID)
    assert slots["requested_slot"] == "appointment_date"
    assert "预约日期" in reply


def test_invalid_id_number_is_explained_and_asked_again(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    reply = chat.text(f"身份证号{ID_BAD}")
    assert "身份证号码校验位不正确，请核对后重新输入" in reply
    assert chat.slots()["id_number"] is None and chat.slots()["requested_slot"] == "id_number"
    # full-width digits and a lower-case x are the same number
    chat.say("１１０１０５１９４９１２３１００２ｘ")
    assert chat.slots()["id_number"] == "11010519491231002X"


def test_bad_birth_date_and_short_phone_get_their_own_reasons(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    assert "出生日期不正确" in chat.text("110101199002307571")
    chat.say(ID)
    assert "手机号码应为11位" in chat.text("1391234567")
    assert chat.slots()["phone"] is None


def test_date_must_be_a_future_working_day_and_the_suggestion_is_a_button(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say(f"我叫张三，电话13912345678，身份证{ID}")
    replies = chat.say("明天")  # Saturday 2026-11-28
    assert "周末" in replies[0].text and "2026年11月30日（周一）" in replies[0].text
    assert chat.slots()["appointment_date"] is None
    assert "过去的日期" in chat.text("2026年11月20日")
    # New Year's Day 2027 is a holiday; the next working day is Monday 4 January
    assert "元旦假期" in chat.text("2027年1月1日")
    holiday = chat.say("2027年1月1日")
    button = holiday[0].buttons[0]
    assert button.title == "2027年1月4日（周一）"
    chat.say(button.payload)
    assert chat.slots()["appointment_date"] == "2027-01-04"
    assert chat.slots()["requested_slot"] == "district"


def test_district_lookup_and_choice_with_synonyms_buttons_and_traditional_characters(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say(f"我叫张三，电话13912345678，身份证{ID}")
    replies = chat.say("下周二")
    assert [b.title for b in replies[-1].buttons] == ["云湖区", "青川区", "临江区", "高新区"]
    assert "不在可选范围内" in chat.text("青山区")
    chat.say("雲湖")  # traditional characters, no 区
    assert chat.slots()["district"] == "云湖区"
    chat.say("身份证丢了")
    assert chat.slots()["service_type"] == "补领"
    chat.say("修改业务类型")
    chat.say('/inform{"service_type": "换领"}')
    assert chat.slots()["service_type"] == "换领"


def test_skip_optional_field_but_not_a_required_one(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    assert "不能跳过" in chat.text("跳过")
    assert chat.slots()["requested_slot"] == "applicant_name"
    reply = fill_to_confirmation(chat)
    assert "备注：（未填写）" in reply
    assert chat.slots()["form_skipped"] == ["remark"]


def test_correction_at_any_time_keeps_the_current_field(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say(f"我叫张三，电话13912345678，身份证{ID}")
    reply = chat.text("电话写错了，是13812345678")
    assert "联系电话改为138****5678" in reply
    assert chat.slots()["phone"] == "13812345678"
    assert chat.slots()["requested_slot"] == "appointment_date"
    assert "预约日期" in reply


def test_pause_and_resume_at_the_same_field(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    reply = chat.text("等一下，我先去找下证件")
    assert "继续" in reply
    tracker = chat.tracker()
    assert tracker.active_loop is None and tracker.slots["paused_form"] == "id_card_appointment"
    reply = chat.text("继续")
    assert "身份证号" in reply
    assert chat.tracker().active_loop == "id_card_appointment"
    assert chat.slots()["applicant_name"] == "张三" and chat.slots()["requested_slot"] == "id_number"


def test_cancel_needs_confirmation(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    assert "确定要取消" in chat.text("不办了")
    assert "身份证号" in chat.text("继续办理")
    assert chat.tracker().active_loop == "id_card_appointment"
    chat.say("算了，取消吧")
    assert "已为您取消" in chat.text("确定")
    tracker = chat.tracker()
    assert tracker.active_loop is None and tracker.slots["applicant_name"] is None


def test_confirmation_masks_personal_data_and_submission_returns_the_reference(
    chat: Chat, backoffice: RunningBackOffice
) -> None:
    reply = fill_to_confirmation(chat)
    assert MASKED_ID in reply and "139****5678" in reply and ID not in reply and "13912345678" not in reply
    assert "2026年12月1日（周二）" in reply
    reply = chat.text("确认")
    assert "YZ-20261127-0001" in reply
    record = backoffice.state.records["YZ-20261127-0001"]
    assert record.form == "id_card_appointment" and record.data["id_number"] == ID
    slots = chat.slots()
    assert slots["reference_number"] == "YZ-20261127-0001"
    assert slots["id_number"] is None and chat.tracker().active_loop is None


def test_modify_a_field_at_the_confirmation_step(chat: Chat) -> None:
    fill_to_confirmation(chat)
    assert "新的联系电话" in chat.text("修改电话")
    reply = chat.text("13812345678")
    assert "138****5678" in reply and "请核对" in reply
    assert chat.slots()["form_phase"] == "confirm"
    # a value given with the change request updates it directly
    reply = chat.text("日期改成下周三")
    assert "2026年12月2日（周三）" in reply


def test_failed_submission_keeps_the_data_and_retries(chat: Chat, backoffice: RunningBackOffice) -> None:
    fill_to_confirmation(chat)
    backoffice.state.fail_remaining = 4  # two turns of (1 try + 1 retry)
    reply = chat.text("确认")
    assert "没有提交成功" in reply and "重试" in reply
    slots = chat.slots()
    assert slots["submission"]["error"] == "submission_unavailable"
    assert slots["id_number"] == ID and slots["form_phase"] == "retry"
    assert "没有提交成功" in chat.text("重试")
    assert chat.slots()["submission"]["attempts"] == 2
    reply = chat.text("好了吗")  # any next message retries automatically; this time the back office is up
    assert "YZ-20261127-0001" in reply
    assert chat.slots()["submission"] == {
        "status": "submitted",
        "form": "id_card_appointment",
        "reference": "YZ-20261127-0001",
    }
    assert len(backoffice.state.records) == 1


def test_without_automatic_retry_the_citizen_is_asked_to_say_retry(
    tmp_path: Path, backoffice: RunningBackOffice
) -> None:
    chat = _chat(tmp_path, backoffice, retry_pending_on_next_turn=False)
    fill_to_confirmation(chat)
    backoffice.state.fail_remaining = 2
    chat.say("确认")
    assert "回复“重试”" in chat.text("怎么这么慢")
    assert backoffice.state.attempts == 2
    assert "YZ-" in chat.text("重试")


def test_custom_form_validation_action_runs_in_process(chat: Chat, backoffice: RunningBackOffice) -> None:
    chat.say("/residence_permit")
    chat.say("王五")
    chat.say("13912345678")
    assert "只受理云州市范围内的地址" in chat.text("杭州市西湖区文三路1号")
    assert chat.slots()["residence_address"] is None
    reply = chat.text("云湖区云湖大道88号3栋201室")
    slots = chat.slots()
    assert slots["residence_address"] == "云州市云湖区云湖大道88号3栋201室"
    assert slots["district"] == "云湖区"  # named inside the address
    assert "请核对" in reply
    chat.say("确认")
    reference = chat.slots()["reference_number"]
    # the form names its own queue (submission_target) under the configured back-office URL
    assert backoffice.state.targets[reference] == "residence-permits"
    assert backoffice.state.records[reference].data["residence_address"] == "云州市云湖区云湖大道88号3栋201室"


def test_digression_without_knowledge_is_rejected_and_the_form_asks_again(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    replies = chat.say("身份证办理要多少钱？")
    tracker = chat.tracker()
    assert any(isinstance(e, ActionExecutionRejected) and e.action_name == "id_card_appointment"
               for e in tracker.events)  # fmt: skip
    assert "身份证号" in replies[-1].text
    assert tracker.slots["requested_slot"] == "id_number" and tracker.active_loop == "id_card_appointment"
    # the question was not taken as the answer to a field
    assert not any(isinstance(e, SlotSet) and e.value == "身份证办理要多少钱？" for e in tracker.events)


def test_a_day_and_a_time_of_day_make_one_appointment(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say(f"我叫张三，电话13912345678，身份证{ID}")
    chat.say("12月3日9点半")  # two time expressions: the day, then the time on that day
    assert chat.slots()["appointment_date"] == "2026-12-03 09:30"
    chat.say("日期改成下周三上午")
    assert chat.slots()["appointment_date"] == "2026-12-02 09:00-12:00"


def test_a_district_given_while_another_field_is_asked_fills_the_district(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    chat.say("临江区")
    slots = chat.slots()
    assert slots["district"] == "临江区" and slots["requested_slot"] == "id_number"


def test_an_answer_given_early_is_acknowledged_and_the_asked_field_asked_again(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    reply = chat.text("下周三上午")  # the ID number was asked
    assert "已记下预约日期：2026年12月2日（周三）" in reply and "身份证" in reply
    assert chat.slots()["requested_slot"] == "id_number"
    # answering the asked field together with another one needs no such note
    reply = chat.text(f"身份证{ID}，电话13912345678")
    assert "已记下" not in reply


def test_continue_after_the_session_expired_resumes_the_form(tmp_path: Path) -> None:
    clock = [NOW]
    chat = Chat(build_agent(sqlite_store(tmp_path / "t.db"), UnconfiguredSubmitter(), clock=lambda: clock[0]))
    chat.say("/id_card_renewal")
    chat.say("张三")
    clock[0] = NOW + timedelta(hours=3)  # the demo session expires after 60 minutes
    reply = chat.text("继续")
    tracker = chat.tracker()
    assert any(isinstance(e, SessionStarted) for e in tracker.events)
    assert tracker.active_loop == "id_card_appointment"
    assert "身份证号" in reply and tracker.slots["applicant_name"] == "张三"


def test_leaving_the_form_from_any_field(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("王小明")
    replies = chat.say("/request_human")
    tracker = chat.tracker()
    assert any(isinstance(e, ActionExecutionRejected) for e in tracker.events_since_last_user())
    assert replies and tracker.slots["applicant_name"] == "王小明" and tracker.slots["id_number"] is None


def test_coming_back_with_the_answer_resumes_and_takes_it(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    chat.say("我先去找下证件，等会儿")
    assert chat.tracker().active_loop is None
    reply = chat.text(f"身份证号是{ID}")  # no "继续": the answer itself brings the form back
    assert "继续办理" in reply and "联系电话" in reply
    assert chat.slots()["id_number"] == ID and chat.tracker().active_loop == "id_card_appointment"


def test_a_question_while_paused_does_not_resume(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say("张三")
    chat.say("等一下")
    chat.say("身份证丢了怎么办？")
    assert chat.tracker().active_loop is None and chat.slots()["paused_form"] == "id_card_appointment"


def test_action_submit_form_retries_a_pending_submission(chat: Chat, backoffice: RunningBackOffice) -> None:
    fill_to_confirmation(chat)
    backoffice.state.fail_remaining = 2
    chat.say("确认")
    assert chat.slots()["submission"]["status"] == "pending"
    replies = asyncio.run(chat.agent.execute(chat.conversation_id, "action_submit_form"))
    assert "YZ-20261127-0001" in replies[0].text
    assert chat.slots()["submission"]["status"] == "submitted" and chat.tracker().active_loop is None
    # nothing left to submit
    replies = asyncio.run(chat.agent.execute(chat.conversation_id, "action_submit_form"))
    assert "没有待提交" in replies[0].text


def test_action_reset_form_slots_forgets_every_field(chat: Chat) -> None:
    chat.say("/id_card_renewal")
    chat.say(f"我叫张三，电话13912345678，身份证{ID}")
    asyncio.run(chat.agent.execute(chat.conversation_id, "action_reset_form_slots"))
    slots = chat.slots()
    assert slots["applicant_name"] is None and slots["id_number"] is None and slots["phone"] is None


def test_cancel_and_pause_work_while_a_free_text_field_is_asked(chat: Chat) -> None:
    chat.say("/id_card_renewal")  # the name (free text) is asked first
    assert "确定要取消" in chat.text("不办了")
    assert chat.slots()["applicant_name"] is None
    chat.say("继续办理")
    assert "保留" in chat.text("等一下，我先去找下证件")
    assert chat.slots()["applicant_name"] is None and chat.slots()["paused_form"] == "id_card_appointment"
