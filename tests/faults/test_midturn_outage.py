"""PostgreSQL cut in the middle of a turn: the citizen's "确认" is stored, the back office has taken the form, and
the database goes away before the turn's answer is written. The request fails with 503; the client's retry with
the same message id (after the database returns) finishes the turn: one stored message, one application, the
reference told once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from fault_chat import fill_loss_report
from fault_rig import FaultRig


def test_database_cut_mid_turn_leaves_nothing_half_done(rig: FaultRig, fresh_session: str) -> None:
    s = fresh_session

    def post(mid: str, msg: str) -> httpx.Response:
        return rig.post(s, mid, msg)

    assert "核对" in fill_loss_report(post, confirm=False)
    # the back office records the form at once and answers 1.5 s later (within the submitter's 2 s timeout):
    # the turn is then waiting, with the citizen's message already committed
    rig.backoffice.state.delay_s = 1.5
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(post, "m-confirm", "确认")
            deadline = time.monotonic() + 20
            while "m-confirm" not in [m.get("message_id") for m in rig.user_messages(s)]:
                assert time.monotonic() < deadline, "the confirmation was never stored"
                time.sleep(0.02)
            rig.pg.cut()
            first = pending.result()
    finally:
        rig.backoffice.state.delay_s = 0
        rig.pg.restore()
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "service_unavailable"
    applications = [ref for ref, rec in list(rig.backoffice.state.records.items()) if rec.conversation_id == s]
    assert len(applications) == 1  # the back office took it before the cut
    # the client sends the same message again: the turn is finished, not taken twice
    retry = post("m-confirm", "确认")
    assert retry.status_code == 200, retry.text
    [reference] = applications
    assert reference in retry.text, retry.text
    assert [ref for ref, rec in list(rig.backoffice.state.records.items()) if rec.conversation_id == s] == [reference]
    ids = [m.get("message_id") for m in rig.user_messages(s)]
    assert ids.count("m-confirm") == 1, ids
    assert sum(reference in t for t in rig.bot_texts(s)) == 1
    assert post("m-after", "谢谢").status_code == 200
