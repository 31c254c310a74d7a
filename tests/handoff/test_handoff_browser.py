"""The whole handoff in Chromium: a citizen in the web chat widget and an agent in the console, two browser
contexts against one live server. Asks for a person mid-form, sees the queue position, chats both ways, is
transferred, goes back to the bot, finishes the form, and rates the service after the close."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from browser import log_in
from demo_project import LiveServer, served
from handoff_helpers import PASSWORD
from test_handoff_flow import close_all

from assistant.calendar import load_holiday_calendar

pytestmark = pytest.mark.browser

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def live(app: Any) -> Iterator[LiveServer]:
    # the WebSocket implementation handoff_helpers.serve runs the handoff suite's servers with
    with served(app, ws="websockets") as server:
        yield server


def next_working_day() -> date:
    calendar = load_holiday_calendar()
    day = datetime.now().date() + timedelta(days=1)
    return calendar.next_working_day(day)


# records desktop notifications instead of showing them
NOTIFICATION_SPY = """
window.__notifications = [];
window.Notification = function (title, options) { window.__notifications.push({title: title, body: (options || {}).body}); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


def test_citizen_and_agent_in_chromium(browser: Any, live: LiveServer, runtime: Any) -> None:
    close_all(runtime)
    citizen_ctx = browser.new_context(locale="zh-CN")
    agent_ctx = browser.new_context(locale="zh-CN")
    agent_ctx.add_init_script(NOTIFICATION_SPY)
    citizen_ctx.set_default_timeout(TIMEOUT_MS)
    agent_ctx.set_default_timeout(TIMEOUT_MS)
    try:
        web = citizen_ctx.new_page()
        web.goto(live.url + "/")
        bot_texts = web.locator("li.ga-bot .ga-text")

        def citizen_says(text: str, expect: str | None = None) -> None:
            before = bot_texts.count()
            web.fill("#ga-input", text)
            web.press("#ga-input", "Enter")
            if expect is not None:
                web.wait_for_function(
                    "([n, t]) => { const xs = [...document.querySelectorAll('li.ga-bot .ga-text')].slice(n);"
                    " return xs.some(x => x.textContent.includes(t)); }", arg=[before, expect])

        # the agent logs in first and waits with the console open
        desk = agent_ctx.new_page()
        log_in(desk, live.url + "/console", "agent1", PASSWORD)
        desk.wait_for_selector("#desk:not([hidden])")

        citizen_says("我要预约换身份证", "姓名")
        citizen_says("张三", "身份证")
        citizen_says("转人工", "前面还有 0 位")
        queue_line = web.locator(".ga-queue")
        queue_line.wait_for(state="visible")
        assert "第 1 位" in queue_line.inner_text()
        session_id = web.evaluate("window.GovAssistant.sessionId")

        # the queue entry appears live, with a desktop notification (the sound is the same call)
        item = desk.locator(f"#queue-list li[data-cid='{session_id}']")
        item.wait_for()
        desk.wait_for_function("(cid) => window.GovConsole.notified.includes(cid)", arg=session_id)
        assert desk.evaluate("window.__notifications.length") >= 1
        item.click()
        desk.wait_for_function("() => !document.getElementById('claim-btn').disabled")
        desk.click("#claim-btn")
        web.locator("li.ga-agent").first.wait_for()
        assert "王芳" in web.locator("li.ga-agent .ga-who").first.inner_text()

        # chat both ways
        desk.wait_for_function("() => !document.getElementById('send-btn').disabled")
        desk.fill("#reply-text", "您好，我是王芳，请问需要什么帮助？")
        desk.press("#reply-text", "Enter")
        web.wait_for_function("() => [...document.querySelectorAll('li.ga-agent .ga-text')]"
                              ".some(x => x.textContent.includes('请问需要什么帮助'))")
        citizen_says("我想问换证要带什么材料")
        desk.wait_for_function("() => [...document.querySelectorAll('#transcript li.kind-user .text')]"
                               ".some(x => x.textContent.includes('换证要带什么材料'))")
        # the form and its fields are visible to the agent
        assert desk.locator("#form-panel tr[data-slot='applicant_name'] td").nth(1).inner_text() == "张三"

        # transfer to a team: back in the queue, claimed again
        desk.select_option("#transfer-team", "social_security")
        desk.fill("#transfer-note", "社保相关")
        desk.click("#transfer-btn")
        web.wait_for_function("() => [...document.querySelectorAll('li.ga-bot .ga-text')]"
                              ".some(x => x.textContent.includes('社保组'))")
        desk.locator(f"#queue-list li[data-cid='{session_id}']").wait_for()
        desk.wait_for_function("() => !document.getElementById('claim-btn').disabled")
        desk.click("#claim-btn")
        desk.wait_for_function("() => !document.getElementById('return-btn').disabled")

        # return to the bot: the form asks for the field it stopped at, and the citizen finishes it
        desk.click("#return-btn")
        web.wait_for_function("() => [...document.querySelectorAll('li.ga-bot .ga-text')]"
                              ".some(x => x.textContent.includes('转回'))")
        web.wait_for_function("() => { const xs = document.querySelectorAll('li.ga-bot .ga-text');"
                              " return xs[xs.length - 1].textContent.includes('身份证'); }")
        day = next_working_day()
        citizen_says("110101199003071233", "手机")
        citizen_says("13912345678", "原因")
        citizen_says("到期换领", "区")
        citizen_says("高新区", "时间")
        citizen_says(f"{day.month}月{day.day}日")
        web.wait_for_function("() => { const xs = document.querySelectorAll('li.ga-bot .ga-text');"
                              " return /确认|核对/.test(xs[xs.length - 1].textContent); }")
        citizen_says("确认", "")
        web.wait_for_function("() => [...document.querySelectorAll('li.ga-bot .ga-text')]"
                              ".some(x => /提交成功|预约成功|受理编号|预约号|已提交/.test(x.textContent))")

        # another handoff, closed by the agent; the citizen rates it
        citizen_says("还是转人工吧", "前面还有")
        desk.locator(f"#queue-list li[data-cid='{session_id}']").wait_for()
        desk.locator(f"#queue-list li[data-cid='{session_id}']").click()
        desk.wait_for_function("() => !document.getElementById('claim-btn').disabled")
        desk.click("#claim-btn")
        desk.wait_for_function("() => !document.getElementById('close-btn').disabled")
        desk.select_option("#close-outcome", "resolved")
        desk.click("#close-btn")
        rating = web.locator("li.ga-rating")
        rating.wait_for()
        rating.locator("button.ga-quick").nth(4).click()
        web.wait_for_function("() => [...document.querySelectorAll('li.ga-bot .ga-text')]"
                              ".some(x => x.textContent.includes('感谢您的评价（5 分）'))")
        assert runtime.handoff.store.latest_for(session_id).rating == 5
        transcript = desk.locator("#transcript").inner_text()
        assert "会话结束" in transcript
    finally:
        citizen_ctx.close()
        agent_ctx.close()
