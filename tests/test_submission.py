"""The submission connector against the real demo back office over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from assistant.forms.config import SubmissionConfig
from assistant.forms.submission import Submission, SubmissionError
from connectors.backoffice_demo import BackOfficeState, RunningBackOffice, serve_in_thread
from connectors.submission import HttpSubmitter

DATA = {"姓名": "张三", "id_number": "110101199003077578", "phone": "13912345678"}


@pytest.fixture()
def backoffice() -> Iterator[RunningBackOffice]:
    with serve_in_thread(BackOfficeState(today=lambda: date(2026, 11, 27))) as running:
        yield running


def _submitter(url: str, sleeps: list[float], **kw: float) -> HttpSubmitter:
    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    config = SubmissionConfig(url=url, **kw)
    return HttpSubmitter(config, sleep=fake_sleep)


def test_success_returns_the_back_office_reference(backoffice: RunningBackOffice) -> None:
    receipt = asyncio.run(
        _submitter(backoffice.submissions_url, []).submit(Submission("c1", "id_card_appointment", DATA))
    )
    assert receipt.reference == "YZ-20261127-0001"
    assert receipt.attempts == 1
    assert backoffice.state.records[receipt.reference].data["phone"] == "13912345678"


def test_same_content_same_key_same_reference_different_content_new_reference(
    backoffice: RunningBackOffice,
) -> None:
    sub = Submission("c1", "id_card_appointment", DATA)
    submitter = _submitter(backoffice.submissions_url, [])
    first = asyncio.run(submitter.submit(sub))
    again = asyncio.run(
        submitter.submit(Submission("c1", "id_card_appointment", dict(reversed(DATA.items()))))
    )
    other = asyncio.run(submitter.submit(Submission("c2", "id_card_appointment", DATA)))
    assert first.reference == again.reference
    assert other.reference == "YZ-20261127-0002"
    assert len(backoffice.state.records) == 2


def test_retries_with_backoff_then_succeeds(backoffice: RunningBackOffice) -> None:
    backoffice.state.fail_remaining = 2
    sleeps: list[float] = []
    receipt = asyncio.run(
        _submitter(backoffice.submissions_url, sleeps, max_retries=3, backoff_s=0.5).submit(
            Submission("c1", "f", DATA)
        )
    )
    assert receipt.attempts == 3
    assert sleeps == [0.5, 1.0]
    assert backoffice.state.attempts == 3


def test_gives_up_after_bounded_retries_with_a_typed_bilingual_error(backoffice: RunningBackOffice) -> None:
    backoffice.state.fail_remaining = 10
    sleeps: list[float] = []
    with pytest.raises(SubmissionError) as info:
        asyncio.run(
            _submitter(
                backoffice.submissions_url, sleeps, max_retries=2, backoff_s=1, backoff_max_s=1.5
            ).submit(Submission("c1", "f", DATA))
        )
    err = info.value
    assert (err.code, err.retryable, err.attempts) == ("submission_unavailable", True, 3)
    assert "暂时不可用" in err.message_zh and "unavailable" in err.message_en
    assert sleeps == [1, 1.5]
    assert backoffice.state.attempts == 3


def test_client_error_is_not_retried(backoffice: RunningBackOffice) -> None:
    backoffice.state.fail_remaining, backoffice.state.fail_status = 1, 422
    with pytest.raises(SubmissionError) as info:
        asyncio.run(_submitter(backoffice.submissions_url, []).submit(Submission("c1", "f", DATA)))
    assert (info.value.code, info.value.retryable, info.value.attempts) == ("submission_rejected", False, 1)
    assert backoffice.state.attempts == 1


def test_timeout_then_retry_keeps_one_application(backoffice: RunningBackOffice) -> None:
    backoffice.state.delay_s = 0.6
    with pytest.raises(SubmissionError) as info:
        asyncio.run(
            _submitter(backoffice.submissions_url, [], timeout_s=0.2, max_retries=1).submit(
                Submission("c1", "f", DATA)
            )
        )
    assert info.value.code == "submission_timeout"
    backoffice.state.delay_s = 0
    receipt = asyncio.run(_submitter(backoffice.submissions_url, []).submit(Submission("c1", "f", DATA)))
    # both timed-out attempts reached the back office; the key made them one application
    assert len(backoffice.state.records) == 1
    assert receipt.reference == "YZ-20261127-0001"


def test_unreachable_back_office() -> None:
    with pytest.raises(SubmissionError) as info:
        asyncio.run(
            _submitter("http://127.0.0.1:9/submissions", [], max_retries=1).submit(Submission("c", "f", {}))
        )
    assert (info.value.code, info.value.attempts) == ("submission_unreachable", 2)


def test_answer_without_reference_is_a_bad_response() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    submitter = HttpSubmitter(SubmissionConfig(url="http://backoffice.invalid/s"), transport=transport)
    with pytest.raises(SubmissionError) as info:
        asyncio.run(submitter.submit(Submission("c", "f", {})))
    assert info.value.code == "submission_bad_response"


def test_idempotency_key_header_is_sent_and_depends_on_content_only() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Idempotency-Key"])
        return httpx.Response(201, json={"reference": "YZ-20260101-0001"})

    submitter = HttpSubmitter(
        SubmissionConfig(url="http://bo.invalid/s"), transport=httpx.MockTransport(handler)
    )
    asyncio.run(submitter.submit(Submission("c", "f", {"a": 1, "b": "二"})))
    asyncio.run(submitter.submit(Submission("c", "f", {"b": "二", "a": 1})))
    asyncio.run(submitter.submit(Submission("c", "f", {"a": 2, "b": "二"})))
    assert seen[0] == seen[1] != seen[2]
    assert len(seen[0]) == 64


def test_a_form_may_name_its_own_target_under_the_configured_url(backoffice: RunningBackOffice) -> None:
    submitter = _submitter(backoffice.submissions_url, [])
    receipt = asyncio.run(
        submitter.submit(Submission("c1", "residence_permit_application", DATA, "residence-permits"))
    )
    assert backoffice.state.targets[receipt.reference] == "residence-permits"
    assert (
        submitter.url_for(Submission("c", "f", {}, "https://other.example/api/x"))
        == "https://other.example/api/x"
    )
    assert submitter.url_for(Submission("c", "f", {})) == backoffice.submissions_url
