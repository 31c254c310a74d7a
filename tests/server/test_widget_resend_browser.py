"""The widget in Debian's headless Chromium when the server refuses a message for now (the conversation is busy,
or moved on another replica): the message stays pending, is sent again by itself with the same id after the
``retry_after`` the server named, and is answered once. Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from browser import ARTIFACTS, browser_page, open_widget
from server_harness import LiveServer

from assistant.redis_locks import conversation_busy

pytestmark = pytest.mark.browser

BOT = ".ga-log .ga-bot"


def test_a_refused_message_is_sent_again_by_the_widget(
    browser: Any, live_server: LiveServer, runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = runtime.agent.handle
    seen: list[tuple[str, str | None]] = []

    async def busy_first(message: Any) -> Any:
        seen.append((message.text, message.message_id))
        if len(seen) == 1:
            raise conversation_busy(1)
        return await real(message)

    monkeypatch.setattr(runtime.agent, "handle", busy_first)
    with browser_page(browser, timeout_ms=20_000, locale="zh-CN") as page:
        open_widget(page, live_server.url)
        page.wait_for_function("document.querySelector('.ga-widget') !== null")
        before = page.locator(BOT).count()
        page.fill("#ga-input", "谢谢")
        page.press("#ga-input", "Enter")
        # the refusal is shown, the citizen's message stays on screen as pending
        page.wait_for_function("document.querySelector('.ga-status') && "
                               "document.querySelector('.ga-status').textContent.includes('自动重发')")
        page.screenshot(path=str(ARTIFACTS / "widget-resend-pending.png"))
        # ... and is answered without anyone pressing anything
        page.wait_for_function(f"document.querySelectorAll('{BOT}').length > {before}")
        page.wait_for_selector(".ga-pending", state="detached")
        page.screenshot(path=str(ARTIFACTS / "widget-resend-answered.png"))
    assert [text for text, _ in seen] == ["谢谢", "谢谢"]
    assert seen[0][1] and seen[0][1] == seen[1][1]  # the same message id: the server takes it once
