"""The form outbox with the real engine, a SQLite store and the demo back office over HTTP: a form the back office
could not take is submitted by the background worker once it answers, exactly once; a cancelled or changed form is
dropped; two workers never take the same row."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "forms"))

from form_harness import Chat, interpreter, load_domain, sqlite_store  # noqa: E402

from assistant.actions import ActionRegistry  # noqa: E402
from assistant.agent import Agent  # noqa: E402
from assistant.forms.config import FormsConfig, OutboxConfig, SubmissionConfig  # noqa: E402
from assistant.forms.outbox import OutboxStore, OutboxWorker  # noqa: E402
from assistant.forms.wiring import FormsRuntime, build_forms_runtime  # noqa: E402
from assistant.nlg import NLG  # noqa: E402
from assistant.policies import PolicyBuildContext, PolicyEnsemble, build_policies  # noqa: E402
from connectors.backoffice_demo import BackOfficeState, RunningBackOffice, serve_in_thread  # noqa: E402
from connectors.submission import HttpSubmitter  # noqa: E402

ID = "110101199003077571"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread(BackOfficeState(today=lambda: date(2026, 11, 27))) as running:
        yield running


class Pushed:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []

    async def __call__(self, channel: str, recipient: str, replies: Sequence[Any]) -> None:
        self.calls.append((channel, recipient, [r.text for r in replies]))


def _rig(tmp_path: Path, backoffice: RunningBackOffice) -> tuple[Chat, OutboxWorker, OutboxStore, Pushed]:
    async def no_sleep(_: float) -> None:
        return None

    config = FormsConfig(outbox=OutboxConfig(interval_s=1, backoff_s=0, backoff_max_s=0))
    submitter = HttpSubmitter(SubmissionConfig(url=backoffice.submissions_url, max_retries=0), sleep=no_sleep)
    store = sqlite_store(tmp_path / "t.db")
    outbox = OutboxStore(store.engine)
    domain = load_domain()
    forms: FormsRuntime = build_forms_runtime(ROOT, domain, config, submitter, outbox=outbox)
    policies, warnings = build_policies(
        [{"name": "FormPolicy"}, {"name": "RulePolicy"}, {"name": "MemoizationPolicy"}], PolicyBuildContext(domain)
    )
    agent = Agent(domain, interpreter(), PolicyEnsemble(policies, warnings),
                  ActionRegistry.for_domain(domain, forms.actions), store, NLG(domain, seed=0))
    pushed = Pushed()
    worker = OutboxWorker(outbox, forms.forms, submitter, agent, config.outbox, pushed)
    return Chat(agent), worker, outbox, pushed


def _confirm_while_down(chat: Chat, backoffice: RunningBackOffice) -> str:
    chat.say("/id_card_renewal")
    chat.say(f"我叫张三，电话13912345678，身份证{ID}")
    chat.say("下周二")
    chat.say("云湖区")
    chat.say("换领")
    assert "核对" in chat.text("跳过")
    backoffice.state.fail_remaining = 1_000
    return chat.text("确认")


def test_kept_form_is_submitted_by_the_worker_once_the_back_office_answers(
    tmp_path: Path, backoffice: RunningBackOffice
) -> None:
    chat, worker, outbox, pushed = _rig(tmp_path, backoffice)
    reply = _confirm_while_down(chat, backoffice)
    assert "保留" in reply and "自动为您提交" in reply
    assert chat.slots()["submission"]["status"] == "pending"
    assert outbox.pending_count() == 1
    # still down: tried, kept, nothing said to the citizen
    before = len(chat.tracker().events)
    assert asyncio.run(worker.run_once()) == 0
    assert outbox.pending_count() == 1 and len(chat.tracker().events) == before and not pushed.calls
    backoffice.state.fail_remaining = 0
    assert asyncio.run(worker.run_once()) == 1
    [reference] = backoffice.state.records
    slots = chat.slots()
    assert slots["submission"] == {"status": "submitted", "form": "id_card_appointment", "reference": reference}
    assert slots["reference_number"] == reference and slots["id_number"] is None  # data left the conversation
    assert chat.tracker().active_loop is None
    [(channel, recipient, texts)] = pushed.calls
    assert recipient == chat.conversation_id and reference in texts[0] and "自动提交成功" in texts[0]
    assert channel == "rest"
    # nothing more to do, and the conversation goes on with the form closed
    assert asyncio.run(worker.run_once()) == 0 and outbox.pending_count() == 0
    assert len(backoffice.state.records) == 1
    assert "核对" not in chat.text("谢谢")


def test_a_form_submitted_by_the_citizens_own_retry_is_not_submitted_again(
    tmp_path: Path, backoffice: RunningBackOffice
) -> None:
    chat, worker, outbox, _ = _rig(tmp_path, backoffice)
    _confirm_while_down(chat, backoffice)
    backoffice.state.fail_remaining = 0
    assert "YZ-" in chat.text("重试")
    attempts = backoffice.state.attempts
    assert asyncio.run(worker.run_once()) == 0
    assert backoffice.state.attempts == attempts and len(backoffice.state.records) == 1
    assert outbox.pending_count() == 0


def test_a_cancelled_form_is_dropped_not_submitted(tmp_path: Path, backoffice: RunningBackOffice) -> None:
    chat, worker, outbox, pushed = _rig(tmp_path, backoffice)
    _confirm_while_down(chat, backoffice)
    chat.say("取消")
    assert "已为您取消" in chat.text("确定取消")
    backoffice.state.fail_remaining = 0
    attempts = backoffice.state.attempts
    assert asyncio.run(worker.run_once()) == 0
    assert backoffice.state.attempts == attempts and not backoffice.state.records and not pushed.calls
    assert outbox.pending_count() == 0


def test_two_workers_never_claim_the_same_row(tmp_path: Path, backoffice: RunningBackOffice) -> None:
    chat, _, outbox, _ = _rig(tmp_path, backoffice)
    _confirm_while_down(chat, backoffice)
    other = OutboxStore(outbox.engine)
    first = outbox.claim(10, lease_s=60)
    assert len(first) == 1 and other.claim(10, lease_s=60) == []
    # a holder that died: once its lease is over the row is taken again
    other.clock = lambda: outbox.clock() + 61
    assert [i.key for i in other.claim(10, lease_s=60)] == [first[0].key]
