"""The demo project's four service forms (domain.yml at the repository root) run end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import form_harness
import pytest
import yaml
from form_harness import ROOT, Chat, build_agent, sqlite_store

from assistant.actions import ActionRegistry
from assistant.domain import Domain
from assistant.forms.config import FormsConfig
from assistant.forms.spec import form_spec
from assistant.forms.submission import UnconfiguredSubmitter
from assistant.forms.wiring import build_forms_runtime

DEMO = Domain.from_dict(yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8")), "domain.yml")

# one plausible answer per demo field, typed the way citizens type
ANSWERS = {
    "applicant_name": "张三",
    "id_number": "１１０１０１１９９００３０７７５７１",
    "phone": "139 1234 5678",
    "reason": "过期了",
    "district": "雲湖區",
    "appointment_time": "下周二上午",
    "loss_time": "跳过",
    "contact_district": "青川",
    "residence_address": "云湖区文昌路66号3栋201室",
    "residence_start_date": "2025年3月1日",
    "withdrawal_reason": "租房",
    "amount": "跳过",
}


def test_every_demo_form_builds_and_every_declared_action_exists() -> None:
    assert set(DEMO.forms) == {
        "id_card_appointment",
        "social_security_card_loss_report",
        "residence_permit_application",
        "housing_fund_withdrawal_appointment",
    }
    for name in DEMO.forms:
        assert form_spec(DEMO, name).fields
    runtime = build_forms_runtime(ROOT, DEMO, FormsConfig(), UnconfiguredSubmitter())
    registry = ActionRegistry.for_domain(DEMO, runtime.actions)
    missing = set(registry.missing(DEMO))
    # the two actions of other packages (knowledge answers, human handoff) are not the forms' to provide
    assert missing <= {"action_answer_policy_question", "action_human_handoff"}


@pytest.mark.parametrize("form", sorted(DEMO.forms))
def test_demo_form_reaches_a_masked_confirmation(
    form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(form_harness, "load_domain", lambda: DEMO)
    chat = Chat(build_agent(sqlite_store(tmp_path / "t.db"), UnconfiguredSubmitter()))
    chat.say("你好")  # opens the session
    asyncio.run(chat.agent.execute(chat.conversation_id, form))  # in the demo, rules start forms
    reply = ""
    for _ in range(len(form_spec(DEMO, form).fields) + 2):
        requested = chat.slots().get("requested_slot")
        if requested is None:
            break
        reply = chat.text(ANSWERS[requested])
    assert chat.slots()["form_phase"] == "confirm", reply
    assert "1101**********7571" in reply and "139****5678" in reply
    assert "110101199003077571" not in reply
    reply = chat.text("确认")
    assert "保存" in reply or "保留" in reply  # no back office configured: the data is kept for a retry
    assert chat.slots()["submission"]["status"] == "pending"


def test_an_address_that_names_a_district_is_still_the_address() -> None:
    """The NLU's lookup finds 云湖区 inside the address; that mention must not discard the free-text answer."""
    from assistant.forms.extraction import extract

    spec = form_spec(DEMO, "residence_permit_application")
    text = "云湖区幸福路88号3栋502"
    message = {"text": text, "entities": [{"entity": "district", "value": "云湖区", "start": 0, "end": 3, "text": "云湖区"}]}
    out = extract(spec, message, {"residence_address": text}, "residence_address")
    assert out.candidates["residence_address"].raw == text
    assert out.candidates["district"].incidental  # may fill an empty district, never replaces one


def test_a_phone_typed_where_the_address_is_asked_is_not_the_address() -> None:
    from assistant.forms.extraction import extract

    spec = form_spec(DEMO, "residence_permit_application")
    text = "电话是13912345678"
    message = {"text": text, "entities": [{"entity": "phone", "value": "13912345678", "start": 3, "end": 14, "text": "13912345678"}]}
    out = extract(spec, message, {"residence_address": text}, "residence_address")
    assert "residence_address" not in out.candidates
    assert out.candidates["phone"].raw == "13912345678"
