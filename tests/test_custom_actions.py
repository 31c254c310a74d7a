"""rasa-sdk custom actions of the demo project, in process and on a real rasa-sdk action server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from demo_project import free_port

from assistant.custom_actions import (
    ActionRejected,
    CustomActionError,
    CustomActionResult,
    CustomActionRunner,
    InProcessActions,
    RemoteActions,
)

ROOT = Path(__file__).resolve().parents[1]

DOMAIN: dict[str, Any] = {
    "slots": {
        "district": {
            "type": "categorical",
            "values": ["云湖区", "青川区", "临江区", "高新区"],
            "mappings": [],
        },
        "residence_address": {"type": "text", "mappings": [{"type": "from_text"}]},
        "requested_slot": {"type": "any", "mappings": []},
    },
    "forms": {"residence_permit_application": {"required_slots": ["residence_address", "district"]}},
    "responses": {},
}


def tracker_json(
    slots: dict[str, Any], text: str, tail_slots: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A tracker in Rasa's JSON shape; ``tail_slots`` are the candidate values a form just extracted."""
    latest = {"text": text, "intent": {"name": "inform", "confidence": 0.9}, "entities": []}
    events: list[dict[str, Any]] = [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": text, "parse_data": latest},
    ]
    events += [{"event": "slot", "name": k, "value": v} for k, v in (tail_slots or {}).items()]
    return {
        "sender_id": "c-42",
        "slots": {**slots, **(tail_slots or {})},
        "latest_message": latest,
        "events": events,
        "paused": False,
        "followup_action": None,
        "active_loop": {"name": "residence_permit_application"},
        "latest_action_name": "action_listen",
    }


@pytest.fixture(scope="module")
def action_server() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "SANIC_HOST": "127.0.0.1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rasa-sdk action server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("rasa-sdk action server did not start within 60 s")
            time.sleep(0.2)
        yield f"{base}/webhook"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(params=["in_process", "remote"])
def runner(request: pytest.FixtureRequest) -> CustomActionRunner:
    if request.param == "in_process":
        return InProcessActions.from_project(ROOT)
    return RemoteActions(request.getfixturevalue("action_server"))


def run(runner: CustomActionRunner, name: str, tracker: dict[str, Any]) -> CustomActionResult:
    return asyncio.run(runner.run(name, tracker, DOMAIN))


def test_in_process_discovers_both_kinds() -> None:
    names = InProcessActions.from_project(ROOT).names()
    assert names == {
        "action_lookup_service_hall",
        "validate_residence_permit_application",
        "validate_id_card_appointment",
        "validate_social_security_card_loss_report",
        "validate_housing_fund_withdrawal_appointment",
    }


def test_remote_lists_the_same_actions(action_server: str) -> None:
    remote = RemoteActions(action_server)
    assert asyncio.run(remote.refresh_names()) == InProcessActions.from_project(ROOT).names()


def test_plain_action_sets_a_slot_and_utters(runner: CustomActionRunner) -> None:
    result = run(runner, "action_lookup_service_hall", tracker_json({"district": "青川区"}, "去哪里办"))
    assert result.events == [
        {
            "event": "slot",
            "timestamp": None,
            "name": "service_hall",
            "value": "青川区政务服务中心（青川区锦绣大道210号）",
        }
    ]
    assert "青川区政务服务中心" in result.responses[0]["text"]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("云湖区云湖大道88号3栋201室", "云州市云湖区云湖大道88号3栋201室"),
        ("云州市 临江区滨江东路5号", "云州市临江区滨江东路5号"),
        ("云州高新区科创大道1号", "云州市高新区科创大道1号"),
    ],
)
def test_form_validation_accepts_and_normalises_a_local_address(
    runner: CustomActionRunner, typed: str, stored: str
) -> None:
    result = run(
        runner,
        "validate_residence_permit_application",
        tracker_json({}, typed, tail_slots={"residence_address": typed}),
    )
    assert [(e["event"], e["name"], e["value"]) for e in result.events] == [
        ("slot", "residence_address", stored)
    ]
    assert result.responses == []


def test_form_validation_rejects_another_city_with_a_reason(runner: CustomActionRunner) -> None:
    typed = "杭州市西湖区文三路1号"
    result = run(
        runner,
        "validate_residence_permit_application",
        tracker_json({}, typed, tail_slots={"residence_address": typed}),
    )
    assert [(e["name"], e["value"]) for e in result.events] == [("residence_address", None)]
    assert "云州市" in result.responses[0]["text"] and "杭州市" in result.responses[0]["text"]


@pytest.mark.parametrize(
    ("form", "slot", "value", "stored", "says"),
    [
        ("housing_fund_withdrawal_appointment", "amount", "20000", 20000.0, None),
        ("housing_fund_withdrawal_appointment", "amount", -5, None, "大于0元"),
        ("housing_fund_withdrawal_appointment", "amount", 2_000_000, None, "不超过100万元"),
        ("social_security_card_loss_report", "loss_time", "2020-05-01T00:00:00+08:00", "2020-05-01", None),
        ("social_security_card_loss_report", "loss_time", "2999-05-01T00:00:00+08:00", None, "不能晚于今天"),
        ("social_security_card_loss_report", "loss_time", "上个月月底", "上个月月底", None),
        ("id_card_appointment", "reason", "丢失补领", "丢失补领", "本人到场"),
    ],
)
def test_other_demo_form_validations(
    runner: CustomActionRunner, form: str, slot: str, value: Any, stored: Any, says: str | None
) -> None:
    domain = {**DOMAIN, "forms": {form: {"required_slots": [slot]}}}
    result = asyncio.run(
        runner.run(f"validate_{form}", tracker_json({}, str(value), tail_slots={slot: value}), domain)
    )
    assert [(e["name"], e["value"]) for e in result.events] == [(slot, stored)]
    if says:
        assert says in result.responses[0]["text"]
    else:
        assert result.responses == []


def test_unknown_action_is_a_typed_error(runner: CustomActionRunner) -> None:
    with pytest.raises(CustomActionError) as info:
        run(runner, "action_does_not_exist", tracker_json({}, "你好"))
    assert info.value.code == "action_not_found"
    assert info.value.action_name == "action_does_not_exist"


def test_rejection_maps_to_action_rejected(tmp_path: Path) -> None:
    pkg = tmp_path / "rejecting_actions"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "mod.py").write_text(
        "from rasa_sdk import Action\n"
        "from rasa_sdk.interfaces import ActionExecutionRejection\n"
        "class Refuse(Action):\n"
        "    def name(self):\n        return 'action_refuse'\n"
        "    def run(self, dispatcher, tracker, domain):\n"
        "        raise ActionExecutionRejection('action_refuse', '不接受')\n",
        encoding="utf-8",
    )
    runner = InProcessActions.from_project(tmp_path, "rejecting_actions")
    with pytest.raises(ActionRejected):
        run(runner, "action_refuse", tracker_json({}, "x"))


def test_unreachable_server_is_a_typed_error() -> None:
    with pytest.raises(CustomActionError) as info:
        run(
            RemoteActions("http://127.0.0.1:9/webhook", timeout_s=1),
            "action_lookup_service_hall",
            tracker_json({}, "x"),
        )
    assert info.value.code == "action_server_unreachable"


# ---- through the engine: the same actions as the agent runs them ----------------------------------------------

sys.path.insert(0, str(ROOT / "tests" / "forms"))
from form_harness import Chat, build_agent, sqlite_store  # noqa: E402

from assistant.forms.submission import UnconfiguredSubmitter  # noqa: E402


def _agent_chat(tmp_path: Path, runner: CustomActionRunner) -> Chat:
    return Chat(build_agent(sqlite_store(tmp_path / "t.db"), UnconfiguredSubmitter(), custom_actions=runner))


def test_agent_runs_a_plain_rasa_sdk_action(tmp_path: Path, runner: CustomActionRunner) -> None:
    chat = _agent_chat(tmp_path, runner)
    chat.say("/residence_permit")
    chat.say("王五")
    chat.say("13912345678")
    chat.say("临江区滨江东路5号")
    replies = asyncio.run(chat.agent.execute(chat.conversation_id, "action_lookup_service_hall"))
    assert "临江区政务服务中心" in (replies[0].text or "")
    assert chat.slots()["service_hall"] == "临江区政务服务中心（临江区滨江路45号）"


def test_agent_runs_the_form_validation_action(tmp_path: Path, runner: CustomActionRunner) -> None:
    chat = _agent_chat(tmp_path, runner)
    chat.say("/residence_permit")
    chat.say("王五")
    chat.say("13912345678")
    assert "只受理云州市范围内的地址" in chat.text("苏州市工业园区星湖街1号")
    assert chat.slots()["residence_address"] is None
    chat.say("云州 青川区青川路8号")
    assert chat.slots()["residence_address"] == "云州市青川区青川路8号"


def test_endpoints_yml_chooses_the_runner(tmp_path: Path) -> None:
    from assistant.custom_actions import build_custom_actions
    from assistant.forms.config import load_endpoints

    assert build_custom_actions(tmp_path, load_endpoints(tmp_path)) is None  # no actions package, no server
    pkg = tmp_path / "actions"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    assert isinstance(build_custom_actions(tmp_path, load_endpoints(tmp_path)), InProcessActions)
    (tmp_path / "endpoints.yml").write_text(
        'action_endpoint:\n  url: "http://localhost:5055/webhook"\n  timeout: 3\ntracker_store:\n  type: sql\n',
        encoding="utf-8",
    )
    endpoints = load_endpoints(tmp_path)
    assert endpoints.action_endpoint is not None and endpoints.action_endpoint.timeout_s == 3
    assert isinstance(build_custom_actions(tmp_path, endpoints), RemoteActions)


def test_the_demo_endpoints_yml_runs_actions_in_process() -> None:
    from assistant.forms.config import load_endpoints

    assert load_endpoints(ROOT).action_endpoint is None
