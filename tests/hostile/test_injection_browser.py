"""HTML and script in messages are text everywhere they are shown: the citizen's widget (live and after a
reload) and the staff console (queue preview, transcript, live list, conversation title), checked in Chromium.

Each page records every dialog (``page.on("dialog")``) and a flag the payloads would set if they ran; the tests
assert no dialog fired, the flag is unset, the literal text is visible, and no element the payloads carry
(img, script, svg, iframe, b) exists in the rendered lists. Debian's /usr/bin/chromium, never a downloaded one.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from browser import log_in
from demo_project import LiveServer
from hostile_helpers import PASSWORD

pytestmark = pytest.mark.browser

TIMEOUT_MS = 30_000
ATTACKS = [
    '<img src=x onerror="alert(1);window.__pwned=1">',
    "<script>alert(2);window.__pwned=2</script>",
    '<svg onload="alert(3);window.__pwned=3"></svg>',
    '"><iframe src="javascript:alert(4)"></iframe><b>粗体</b>',
]
INJECTED = "img, script, svg, iframe, b"


class Watched:
    """A page whose dialogs (alert, confirm, prompt) are recorded and dismissed."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.dialogs: list[str] = []

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def assert_untouched(self, *containers: str) -> None:
        assert self.dialogs == [], self.dialogs
        assert self.page.evaluate("window.__pwned === undefined")
        for css in containers:
            injected = self.page.locator(css).locator(INJECTED)
            assert injected.count() == 0, (css, self.page.locator(css).inner_html()[:500])


def citizen_sends(w: Watched, text: str) -> None:
    """Send as a citizen and wait until the server has answered (the bubble is no longer pending)."""
    before = w.page.locator(".ga-user").count()
    w.page.fill("#ga-input", text)
    w.page.press("#ga-input", "Enter")
    w.page.wait_for_function(f"document.querySelectorAll('.ga-user').length > {before}")
    w.page.wait_for_selector(".ga-pending", state="detached")


def test_html_is_text_in_the_widget_and_the_console(browser: Any, live_server: LiveServer) -> None:
    citizen_ctx = browser.new_context(locale="zh-CN")
    agent_ctx = browser.new_context(locale="zh-CN")
    try:
        web = Watched(citizen_ctx)
        web.page.goto(live_server.url + "/")
        web.page.wait_for_selector(".ga-widget")
        citizen_sends(web, "转人工")
        web.page.locator(".ga-queue").wait_for(state="visible")
        sid = web.page.evaluate("window.GovAssistant.sessionId")

        desk = Watched(agent_ctx)
        log_in(desk.page, live_server.url + "/console", "h_agent", PASSWORD)
        desk.page.wait_for_selector("#desk:not([hidden])")
        queued = desk.page.locator(f"#queue-list li[data-cid='{sid}']")
        queued.wait_for()

        # while waiting, the citizen's messages go to the console live (the queue shows the latest as a preview)
        for attack in ATTACKS:
            citizen_sends(web, attack)
        desk.page.wait_for_function(
            "([cid, t]) => { const li = document.querySelector(`#queue-list li[data-cid='${cid}']`);"
            " return li && li.textContent.includes(t); }", arg=[sid, ATTACKS[-1]])
        shown = web.page.locator(".ga-user .ga-text").all_inner_texts()
        assert shown[-len(ATTACKS):] == ATTACKS, shown

        # the transcript in the console
        queued.click()
        desk.page.wait_for_function(
            "(t) => [...document.querySelectorAll('#transcript li.kind-user .text')].some(x => x.textContent === t)",
            arg=ATTACKS[0])
        transcript = desk.page.locator("#transcript li.kind-user .text").all_inner_texts()
        assert all(a in transcript for a in ATTACKS), transcript

        # the agent answers with markup: the citizen sees it as text too
        desk.page.wait_for_function("() => !document.getElementById('claim-btn').disabled")
        desk.page.click("#claim-btn")
        desk.page.wait_for_function("() => !document.getElementById('send-btn').disabled")
        reply = '<img src=x onerror="alert(5);window.__pwned=5">请稍等'
        desk.page.fill("#reply-text", reply)
        desk.page.press("#reply-text", "Enter")
        web.page.wait_for_function(
            "(t) => [...document.querySelectorAll('li.ga-agent .ga-text')].some(x => x.textContent === t)", arg=reply)

        # after a reload the widget renders the history the same way
        web.page.reload()
        web.page.wait_for_function(
            "(t) => [...document.querySelectorAll('.ga-user .ga-text')].some(x => x.textContent === t)",
            arg=ATTACKS[1])
        assert set(ATTACKS) <= set(web.page.locator(".ga-user .ga-text").all_inner_texts())
        web.assert_untouched(".ga-log", ".ga-queue", ".ga-status")
        desk.assert_untouched("#queue-list", "#mine-list", "#transcript", "#conv-title", "#live-list")
    finally:
        citizen_ctx.close()
        agent_ctx.close()


def test_a_hostile_conversation_id_is_text_in_the_console(browser: Any, live_server: LiveServer) -> None:
    """Rasa REST clients name the conversation (``sender``): the console lists and titles it as text."""
    sender = f'<img src=x onerror="alert(6);window.__pwned=6">{uuid.uuid4().hex[:6]}'
    resp = httpx.post(live_server.url + "/webhooks/rest/webhook", json={"sender": sender, "message": ATTACKS[1]},
                      timeout=30)
    assert resp.status_code == 200, resp.text
    context = browser.new_context(locale="zh-CN")
    try:
        desk = Watched(context)
        log_in(desk.page, live_server.url + "/console", "h_agent", PASSWORD)
        desk.page.wait_for_selector("#desk:not([hidden])")
        desk.page.click("#live-refresh")
        item = desk.page.locator("#live-list li", has_text=sender)
        item.first.wait_for()
        item.first.click()
        desk.page.wait_for_function("(t) => document.getElementById('conv-title').textContent.includes(t)", arg=sender)
        desk.page.wait_for_function(
            "(t) => [...document.querySelectorAll('#transcript .text')].some(x => x.textContent === t)", arg=ATTACKS[1])
        desk.assert_untouched("#live-list", "#conv-title", "#transcript", "#queue-list")
    finally:
        context.close()
