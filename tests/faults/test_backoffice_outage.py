"""The back office down (its TCP proxy cut) or answering 503: a confirmed form is kept, the citizen is told it will
be submitted later, and the outbox submits it when the back office returns: once, with the citizen told the
reference number. A form the citizen cancels in the meantime is never submitted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fault_chat import fill_loss_report
from fault_rig import FaultRig
from sqlalchemy import text


def _records_of(rig: FaultRig, session: str) -> list[str]:
    return [ref for ref, rec in list(rig.backoffice.state.records.items()) if rec.conversation_id == session]


def _outbox(rig: FaultRig, session: str) -> list[tuple[str, str | None, int]]:
    with rig.db.connect() as conn:
        rows = conn.execute(
            text("SELECT status, reference, attempts FROM form_outbox WHERE conversation_id = :c"), {"c": session}
        ).all()
    return [(r.status, r.reference, r.attempts) for r in rows]


@contextmanager
def _back_office_down(rig: FaultRig, how: str) -> Iterator[None]:
    if how == "unreachable":
        rig.backoffice_proxy.cut()
    else:
        rig.backoffice.state.fail_remaining, rig.backoffice.state.fail_status = 1_000_000, 503
    try:
        yield
    finally:
        rig.backoffice_proxy.restore()
        rig.backoffice.state.fail_remaining = 0


@pytest.mark.parametrize("how", ["unreachable", "http_503"])
def test_kept_form_is_submitted_once_when_the_back_office_returns(rig: FaultRig, fresh_session: str, how: str,
                                                                  outbox_interval_s: float) -> None:
    s = fresh_session

    def post(mid: str, msg: str) -> httpx.Response:
        return rig.post(s, mid, msg)

    with _back_office_down(rig, how):
        reply = fill_loss_report(post)
        # kept, and the citizen is told it goes in by itself later
        assert "自动为您提交" in reply, reply
        # several outbox rounds while it is down: tried, not submitted, still pending
        time.sleep(4 * outbox_interval_s)
        assert _records_of(rig, s) == []
        [(status, reference, attempts)] = _outbox(rig, s)
        assert (status, reference) == ("pending", None) and attempts >= 1
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _records_of(rig, s):
        time.sleep(0.2)
    [reference] = _records_of(rig, s)
    record = rig.backoffice.state.records[reference]
    assert record.form == "social_security_card_loss_report" and record.data["id_number"] == "110101199003077571"
    # the conversation says so (history: what a reloaded page shows; a connected widget got it pushed)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(reference in t for t in rig.bot_texts(s)):
        time.sleep(0.2)
    told = [t for t in rig.bot_texts(s) if reference in t]
    assert len(told) == 1 and "自动提交成功" in told[0], told
    history = httpx.get(f"{rig.replica.url}/webchat/history", params={"session_id": s}, timeout=10).json()
    assert any(reference in (m.get("text") or "") for m in history["messages"] if m["role"] == "bot")
    assert _outbox(rig, s)[0][:2] == ("submitted", reference)
    # more rounds change nothing: one application, one message
    time.sleep(2 * outbox_interval_s)
    assert _records_of(rig, s) == [reference]
    assert len([t for t in rig.bot_texts(s) if reference in t]) == 1
    # the form is closed: the citizen goes on talking normally
    after = rig.post(s, "m-after", "谢谢")
    assert after.status_code == 200 and "核对" not in after.text


def test_a_kept_form_the_citizen_cancels_is_never_submitted(rig: FaultRig, fresh_session: str,
                                                             outbox_interval_s: float) -> None:
    s = fresh_session

    def post(mid: str, msg: str) -> httpx.Response:
        return rig.post(s, mid, msg)

    with _back_office_down(rig, "unreachable"):
        fill_loss_report(post)
        assert "取消" in post("m-cancel", "取消").text
        confirm = post("m-cancel-yes", "确定取消")
        assert confirm.status_code == 200 and "已为您取消" in confirm.text, confirm.text
    time.sleep(4 * outbox_interval_s)
    assert _records_of(rig, s) == []
    assert [row[0] for row in _outbox(rig, s)] == ["stale"]
