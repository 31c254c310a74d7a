"""A citizen filling the demo's social-security-card loss report through the web chat, answering what is asked."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bench.demo_citizen import loss_report_answer


def texts(response: httpx.Response) -> str:
    return "\n".join(m.get("text") or "" for m in response.json()["messages"])


def fill_loss_report(
    post: Callable[[str, str], httpx.Response], *, max_turns: int = 12, confirm: bool = True
) -> str:
    """Start the form and answer until the confirmation has been answered (or, without ``confirm``, shown); the
    last reply's text."""
    reply = texts(post("m-start", "/social_security_card_loss"))
    for turn in range(max_turns):
        answer = loss_report_answer(reply)
        assert answer is not None, f"unexpected question: {reply}"
        if answer == "确认" and not confirm:
            return reply
        response = post(f"m-{turn}", answer)
        assert response.status_code == 200, response.text
        reply = texts(response)
        if answer == "确认":
            return reply
    raise AssertionError(f"the form did not reach its confirmation: {reply}")
